#!/bin/bash
# Fills lib/ (test classpath) and src-jars/ (the Kafka 4.0.0 source jars the shadows are made from),
# then builds the logging shadows into shadow/classes. Needs Maven, JDK 17 and Python 3.
set -e
cd "$(dirname "$0")"
mvn -q -B dependency:copy-dependencies -DoutputDirectory=lib
for a in org.apache.kafka:kafka-streams-test-utils:4.0.0:jar:sources org.apache.kafka:kafka-streams:4.0.0:jar:test-sources; do
  mvn -q -B dependency:copy -Dartifact=$a -DoutputDirectory=src-jars
done
# tsrc/ and tusrc/: the unpacked test and test-utils sources, for reading
mkdir -p tsrc tusrc
(cd tsrc && unzip -q -o ../src-jars/kafka-streams-4.0.0-test-sources.jar)
(cd tusrc && unzip -q -o ../src-jars/kafka-streams-test-utils-4.0.0-sources.jar)
python3 make_shadows.py
