#!/bin/bash
# Usage: run-recorded.sh TestClassSimpleName...   (in org.apache.kafka.streams.kstream.internals)
# Runs Kafka 4.0.0's own compiled unit tests with logging shadows; writes rec/<Class>.jsonl
cd "$(dirname "$0")"
CP="shadow/classes:$(ls lib/*.jar | tr '\n' ':')"
mkdir -p rec
for c in "$@"; do
  rm -f rec/$c.jsonl
  EDDY_REC=$PWD/rec/$c.jsonl timeout 900 java -jar lib/junit-platform-console-standalone-1.11.4.jar execute -cp "$CP" \
     --select-class org.apache.kafka.streams.kstream.internals.$c --details=none --disable-banner > rec/$c.junit.txt 2>&1
  echo "$c: $(grep -E 'tests (successful|failed)' rec/$c.junit.txt | tr -s ' ' | tr '\n' ' ')"
done
