from gen import KAFKA_TEST_DIR
P = 'apache/kafka ' + KAFKA_TEST_DIR
COMMON = ('The test writes both the unsuppressed KTable changelog (topic output-raw) and the suppressed one (output-suppressed) and reads each with drainProducerRecords (raw first, then suppressed), '
          'so expected records carry their topic and the relative order between the two topics is not observed (only order within each topic). '
          'Config: only state.dir is set (default 10 MB cache, but the aggregation stores here disable caching unless noted); TopologyTestDriver commits after every record.')
WK = ' Windowed keys are mapped with Windowed.toString() = "[key@start/end]" before writing, so expected keys are those strings.'

def sc(method, name, desc, window, suppress, notes, op='suppress'):
    return {'family': 'suppress', 'name': name, 'rec': ('SuppressScenarioTest', method + '()'), 'mode': 'out', 'show-out-topic': True,
            'source': P + 'SuppressScenarioTest.java#' + method + ' (Kafka 4.0.0)', 'description': desc, 'operation': op,
            **({'window': window} if window else {}), 'suppress': suppress, 'serdes': 'input keys/values String; counts Long',
            'caching': 'disabled on the count store (withCachingDisabled) unless noted', 'topics': {}, 'notes': notes + ' ' + COMMON}

TABLECOUNT = ('Topology: builder.table("input", Materialized.with(String, String).withCachingDisabled().withLoggingDisabled()).groupBy((k, v) -> (v, k)).count()%s; '
              'valueCounts.suppress(%s).toStream().to("output-suppressed"); valueCounts.toStream().to("output-raw"). '
              'The KTable groupBy/count emits a subtract (count for the old value) and then an add for each table update.')
CASES = [
 sc('shouldImmediatelyEmitEventsWithZeroEmitAfter', 'until-time-limit-zero', 'untilTimeLimit(ZERO, unbounded()) on a KTable count: every update passes through immediately (same as raw).', None,
    {'type': 'until-time-limit', 'limit-ms': 0, 'buffer': 'unbounded'}, TABLECOUNT % ('', 'untilTimeLimit(ZERO, unbounded())')),
 sc('shouldSuppressIntermediateEventsWithTimeLimit', 'until-time-limit-2ms', 'untilTimeLimit(2 ms): a key\'s latest value is emitted once stream time reaches (first buffered time of that key + 2); intermediate updates are collapsed; "tick" records advance stream time.', None,
    {'type': 'until-time-limit', 'limit-ms': 2, 'buffer': 'unbounded'}, TABLECOUNT % ('', 'untilTimeLimit(ofMillis(2L), unbounded())')),
 sc('shouldSuppressIntermediateEventsWithRecordLimit', 'until-time-limit-max-records-1', 'untilTimeLimit(Long.MAX_VALUE) with maxRecords(1).emitEarlyWhenFull(): when a second key enters the 1-record buffer, the oldest entry is emitted early.', None,
    {'type': 'until-time-limit', 'limit-ms': 9223372036854775807, 'buffer': 'maxRecords(1).emitEarlyWhenFull()'}, TABLECOUNT % ('(Materialized.with(String, Long))', 'untilTimeLimit(ofMillis(Long.MAX_VALUE), maxRecords(1L).emitEarlyWhenFull())') + ' (count store uses default caching; flushed after every record).'),
 sc('shouldSuppressIntermediateEventsWithBytesLimit', 'until-time-limit-max-bytes', 'untilTimeLimit(Long.MAX_VALUE) with maxBytes(200).emitEarlyWhenFull(): the buffer overflows on the second key and emits the oldest entry early.', None,
    {'type': 'until-time-limit', 'limit-ms': 9223372036854775807, 'buffer': 'maxBytes(200L).emitEarlyWhenFull() (200 bytes as Kafka accounts buffered entries; byte accounting is implementation-specific)'}, TABLECOUNT % ('(Materialized.with(String, Long))', 'untilTimeLimit(ofMillis(Long.MAX_VALUE), maxBytes(200L).emitEarlyWhenFull())')),
 sc('shouldSupportFinalResultsForTimeWindows', 'until-window-closes-tumbling', 'untilWindowCloses on a tumbling-2ms/grace-1ms count: each window is emitted once, with its final count, when stream time >= window end + grace; a record arriving after its window closed is dropped from both raw and suppressed output.',
    {'type': 'tumbling', 'size-ms': 2, 'advance-ms': 2, 'grace-ms': 1}, {'type': 'until-window-closes', 'buffer': 'unbounded'},
    'Topology: stream("input").groupBy((k, v) -> k).windowedBy(TimeWindows.ofSizeAndGrace(ofMillis(2L), ofMillis(1L))).count(Materialized.as("counts").withCachingDisabled()); .suppress(untilWindowCloses(unbounded())).toStream().map(k.toString()).to("output-suppressed"); raw changelog to "output-raw".' + WK),
 sc('shouldSupportFinalResultsForTimeWindowsWithLargeJump', 'until-window-closes-tumbling-large-jump', 'untilWindowCloses with tumbling 2 ms / grace 2 ms: a big stream-time jump closes and emits several windows at once, in window order.',
    {'type': 'tumbling', 'size-ms': 2, 'advance-ms': 2, 'grace-ms': 2}, {'type': 'until-window-closes', 'buffer': 'unbounded'},
    'Topology: same as until-window-closes-tumbling with TimeWindows.ofSizeAndGrace(ofMillis(2L), ofMillis(2L)).' + WK),
 sc('shouldSupportFinalResultsForSlidingWindows', 'until-window-closes-sliding', 'untilWindowCloses on sliding windows (difference 5, grace 15) count.',
    {'type': 'sliding', 'time-difference-ms': 5, 'grace-ms': 15}, {'type': 'until-window-closes', 'buffer': 'unbounded'},
    'Topology: stream("input").groupBy((k, v) -> k).windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(ofMillis(5L), ofMillis(15L))).count(Materialized.as("counts").withCachingDisabled()); suppressed and raw outputs as above.' + WK +
    ' NOTE: for output-raw the test sorts the drained records by (key string, timestamp) before comparing, so the raw order is not asserted; the order listed is the emission order observed with kafka-streams 4.0.0. The suppressed output is compared in order.'),
 sc('shouldSupportFinalResultsForSessionWindows', 'until-window-closes-session', 'untilWindowCloses on session windows (gap 5, no grace) count: merged sessions produce raw tombstones, and only final sessions are emitted once closed.',
    {'type': 'session', 'gap-ms': 5, 'grace-ms': 0}, {'type': 'until-window-closes', 'buffer': 'unbounded'},
    'Topology: stream("input").groupBy((k, v) -> k).windowedBy(SessionWindows.ofInactivityGapWithNoGrace(ofMillis(5L))).count(Materialized.as("counts").withCachingDisabled()); suppressed and raw outputs as above.' + WK + ' Session window end is inclusive, so "[k1@0/0]" is a one-record session.'),
]
