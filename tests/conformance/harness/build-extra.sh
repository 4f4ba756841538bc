#!/bin/bash
# Compiles the Kafka tests that kafka-streams-4.0.0-test.jar does not ship (the foreign-key join
# integration tests, which run on TopologyTestDriver) into extra/classes, against Kafka 4.0.0.
# Their sources are Apache Kafka's, not kept here: this script fetches them into extra/src as they
# are in apache/kafka at commit 1eb7644349cb07139d6a3c1ad1986979647cac99
# (streams/src/test/java/), from a local clone in $KAFKA_REPO if set, else from GitHub.
set -e
cd "$(dirname "$0")"
CP="shadow/classes:lib/kafka-streams-4.0.0-test.jar:$(ls lib/*.jar | grep -v kafka-streams-4.0.0-test.jar | tr '\n' ':')"
COMMIT=1eb7644349cb07139d6a3c1ad1986979647cac99
FILES="org/apache/kafka/streams/integration/KTableKTableForeignKeyJoinIntegrationTest.java org/apache/kafka/streams/integration/KTableKTableForeignKeyJoinMaterializationIntegrationTest.java"
for f in $FILES; do
  mkdir -p "extra/src/$(dirname "$f")"
  if [ -n "${KAFKA_REPO:-}" ]; then
    git -C "$KAFKA_REPO" show "$COMMIT:streams/src/test/java/$f" > "extra/src/$f"
  else
    curl -fsSL "https://raw.githubusercontent.com/apache/kafka/$COMMIT/streams/src/test/java/$f" -o "extra/src/$f"
  fi
done
mkdir -p extra/classes
javac -nowarn -d extra/classes -cp "$CP" $(find extra/src -name '*.java')
