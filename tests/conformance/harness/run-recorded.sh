#!/bin/bash
# Usage: run-recorded.sh TestClass...
# A simple name is a class in org.apache.kafka.streams.kstream.internals; a qualified name
# (org.apache.kafka.streams.integration.X) is taken as it is. Runs Kafka 4.0.0's own compiled
# tests, and the tests compiled from extra/src into extra/classes (build-extra.sh), with the
# logging shadows; writes rec/<SimpleName>.jsonl
cd "$(dirname "$0")"
# kafka-streams-4.0.0-test.jar goes before kafka-clients-4.0.0-test.jar: both ship a log4j2.yaml and
# the streams one (org.apache.kafka.streams at INFO) is the one Kafka's streams tests run with; the
# clients one (org.apache.kafka at ERROR) hides the WARN lines that LogCaptureAppender tests assert.
CP="shadow/classes:extra/classes:lib/kafka-streams-4.0.0-test.jar:$(ls lib/*.jar | grep -v kafka-streams-4.0.0-test.jar | tr '\n' ':')"
mkdir -p rec
for q in "$@"; do
  case "$q" in *.*) ;; *) q=org.apache.kafka.streams.kstream.internals.$q ;; esac
  c=${q##*.}
  rm -f rec/$c.jsonl
  EDDY_REC=$PWD/rec/$c.jsonl timeout 900 java -jar lib/junit-platform-console-standalone-1.11.4.jar execute -cp "$CP" \
     --select-class $q --details=none --disable-banner > rec/$c.junit.txt 2>&1
  # --details=none prints JUnit's summary only when a test fails, so count the recorded test ends
  echo "$c: $(grep -c '"ev":"TEST_END".*"status":"SUCCESSFUL"' rec/$c.jsonl) successful, $(grep '"ev":"TEST_END"' rec/$c.jsonl | grep -vc '"status":"SUCCESSFUL"') not successful $(grep -E 'tests (successful|failed)' rec/$c.junit.txt | tr -s ' ' | tr '\n' ' ')"
done
