from gen import KAFKA_TEST_DIR
P = 'apache/kafka ' + KAFKA_TEST_DIR
TTD = 'TopologyTestDriver commits after every input record (flushing caches) and sets the internal windowed-aggregation emit interval (__emit.interval.ms.kstreams.windowed.aggregation__) to 0, so emit-on-window-close results are not throttled by wall-clock time.'
ORDER_SET = 'NOTE: this test compares, per window start, the SET of (value, timestamp) pairs seen (gatherOutput), so the test itself does not assert order; the order listed is the order kafka-streams 4.0.0 forwarded them in this run.'

def case(fam, cls, method, inv, name, op, window, desc, agg=None, emit='on-window-update', mode='processed', notes='', caching=None, out_topic=None, suppress=None):
    sel = (cls, inv, method) if inv else (cls, method + '()')
    c = {'family': fam, 'name': name, 'rec': sel, 'mode': mode,
         'source': P + cls + '.java#' + method + (' (parameterized invocation "%s")' % inv if inv else '') + ' (Kafka 4.0.0)',
         'description': desc, 'operation': op, 'window': window, 'emit-strategy': emit,
         'serdes': 'keys String, values String', 'caching': caching or 'disabled',
         'topics': {}, 'notes': (notes + ' ' + TTD).strip()}
    if agg: c['aggregator'] = agg
    if out_topic: c['out-topic'] = out_topic
    if suppress: c['suppress'] = suppress
    return c

AGG = 'initializer MockInitializer.STRING_INIT returns "0"; adder MockAggregator.TOSTRING_ADDER: (key, value, agg) -> agg + "+" + value'
RED = 'reducer MockReducer.STRING_ADDER: (v1, v2) -> v1 + "+" + v2 (first record of a window is its own value)'
CNT = 'count(): Long count per window'
TW = {'type': 'tumbling', 'size-ms': 500, 'advance-ms': 500, 'grace-ms': 0}
TWN = 'Topology: builder.stream("input").groupByKey().windowedBy(TimeWindows.ofSizeWithNoGrace(ofMillis(500L))).emitStrategy(%s).%s.toStream().process(MockApiProcessorSupplier). The test asserts the full list supplier.theCapturedProcessor().processed() with assertEquals (order matters). Windowed keys are encoded as key + window-start + window-end (end exclusive for time windows).'
CASES = [
 case('windowed-count', 'TimeWindowedKStreamImplTest', 'shouldCountWindowed', 'inputType=ON_WINDOW_UPDATE, inputWithCache=false', 'tumbling-count-emit-on-update', 'windowed-count', TW,
      'Tumbling 500 ms count without grace, default emit strategy (every update forwarded).', CNT, notes=TWN % ('EmitStrategy.onWindowUpdate()', 'count()'), caching='default (count() without Materialized; the inputWithCache parameter is not used by this test)'),
 case('windowed-count', 'TimeWindowedKStreamImplTest', 'shouldCountWindowed', 'inputType=ON_WINDOW_CLOSE, inputWithCache=false', 'tumbling-count-emit-on-close', 'windowed-count', TW,
      'Tumbling 500 ms count with EmitStrategy.onWindowClose(): only windows closed by stream time (window end + grace <= stream time) are emitted, once, with their final count.', CNT, emit='on-window-close',
      notes=TWN % ('EmitStrategy.onWindowClose()', 'count()'), caching='default (count() without Materialized)'),
 case('windowed-aggregate', 'TimeWindowedKStreamImplTest', 'shouldAggregateWindowed', 'inputType=ON_WINDOW_UPDATE, inputWithCache=false', 'tumbling-aggregate-emit-on-update', 'windowed-aggregate', TW,
      'Tumbling 500 ms aggregate (string concatenation) without grace, emit on every update.', AGG, notes=TWN % ('EmitStrategy.onWindowUpdate()', 'aggregate(STRING_INIT, TOSTRING_ADDER, Materialized.with(String, String).withCachingDisabled())')),
 case('windowed-aggregate', 'TimeWindowedKStreamImplTest', 'shouldAggregateWindowed', 'inputType=ON_WINDOW_CLOSE, inputWithCache=false', 'tumbling-aggregate-emit-on-close', 'windowed-aggregate', TW,
      'Tumbling 500 ms aggregate with emit-on-window-close.', AGG, emit='on-window-close', notes=TWN % ('EmitStrategy.onWindowClose()', 'aggregate(STRING_INIT, TOSTRING_ADDER, Materialized.with(String, String).withCachingDisabled())')),
 case('windowed-aggregate', 'TimeWindowedKStreamImplTest', 'shouldReduceWindowed', 'inputType=ON_WINDOW_UPDATE, inputWithCache=false', 'tumbling-reduce-emit-on-update', 'windowed-aggregate', TW,
      'Tumbling 500 ms reduce (string concatenation) without grace.', RED, notes=TWN % ('EmitStrategy.onWindowUpdate()', 'reduce(MockReducer.STRING_ADDER)'), caching='default (reduce() without Materialized)'),
 case('windowed-aggregate', 'KStreamWindowAggregateTest', 'testAggBasic', 'inputType=ON_WINDOW_UPDATE, inputWithCache=false', 'hopping-aggregate-basic', 'windowed-aggregate',
      {'type': 'hopping', 'size-ms': 10, 'advance-ms': 5, 'grace-ms': 100},
      'Hopping windows (size 10, advance 5, grace 100): each record updates the 2 windows containing it, smaller window start first; out-of-order records within grace update old windows; output timestamp = max record timestamp in the window.', AGG,
      notes='Topology: builder.stream("topic1").groupByKey().windowedBy(TimeWindows.ofSizeAndGrace(ofMillis(10), ofMillis(100)).advanceBy(ofMillis(5))).emitStrategy(onWindowUpdate).aggregate(STRING_INIT, TOSTRING_ADDER, Materialized.as("topic1-Canonized").withValueSerde(String) with caching disabled).toStream().process(supplier); asserts the whole processed() list. Input timestamps come from the test (createInputTopic without start time; each pipeInput gives an explicit timestamp).'),
 case('windowed-aggregate', 'KStreamWindowAggregateTest', 'testAggBasic', 'inputType=ON_WINDOW_CLOSE, inputWithCache=false', 'hopping-aggregate-basic-emit-on-close', 'windowed-aggregate',
      {'type': 'hopping', 'size-ms': 10, 'advance-ms': 5, 'grace-ms': 100},
      'Same input with emit-on-window-close: nothing is emitted because no window end + grace (100) is reached by stream time.', AGG, emit='on-window-close',
      notes='Same topology as hopping-aggregate-basic with EmitStrategy.onWindowClose(); the test asserts processed() is empty.'),
 case('windowed-aggregate', 'KStreamWindowAggregateTest', 'shouldLogAndMeterWhenSkippingExpiredWindow', 'inputType=ON_WINDOW_UPDATE, inputWithCache=false', 'hopping-drop-records-past-retention', 'windowed-aggregate',
      {'type': 'hopping', 'size-ms': 10, 'advance-ms': 5, 'grace-ms': 90, 'retention-ms': 100},
      'Hopping 10/5 with grace 90 and store retention 100: records for windows that already closed (window end + grace <= stream time) are dropped; the test also checks the dropped-records metrics.', 'initializer () -> ""; adder (key, value, agg) -> agg + "+" + value', mode='out', out_topic='output',
      notes='Topology: stream("topic").groupByKey().windowedBy(TimeWindows.ofSizeAndGrace(10, 90).advanceBy(5)).aggregate(() -> "", toStringInstance("+"), Materialized.as("topic1-Canonicalized").withValueSerde(String).withLoggingDisabled().withRetention(100ms), caching disabled).toStream().map((k, v) -> (k.toString(), v)).to("output"). Output keys are Windowed.toString() = "[key@start/end]". The test asserts: dropped-records-total 7.0, record-lateness-max 100.0, record-lateness-avg 67.9, and log lines "Skipping record for expired window ... window=[0,10) expiration=[10] streamTime=[100]" for the 7 records with timestamps 0..6.'),
 case('windowed-aggregate', 'KStreamWindowAggregateTest', 'shouldLogAndMeterWhenSkippingExpiredWindow', 'inputType=ON_WINDOW_CLOSE, inputWithCache=false', 'hopping-drop-records-past-retention-emit-on-close', 'windowed-aggregate',
      {'type': 'hopping', 'size-ms': 10, 'advance-ms': 5, 'grace-ms': 90, 'retention-ms': 100},
      'Same as hopping-drop-records-past-retention with emit-on-window-close: only the window [5,15) is final-emitted (closed at stream time 105).', 'initializer () -> ""; adder (key, value, agg) -> agg + "+" + value', emit='on-window-close', mode='out', out_topic='output',
      notes='Same topology with EmitStrategy.onWindowClose(). The test also asserts dropped-records-total 7.0 and the emitted-records metric = 1.0.'),
 case('windowed-aggregate', 'KStreamWindowAggregateTest', 'shouldLogAndMeterWhenSkippingExpiredWindowByGrace', 'inputType=ON_WINDOW_UPDATE, inputWithCache=false', 'tumbling-drop-late-by-grace', 'windowed-aggregate',
      {'type': 'tumbling', 'size-ms': 10, 'advance-ms': 10, 'grace-ms': 90},
      'Tumbling 10 ms, grace 90: after stream time 200, records for window [100,110) (expires at 200) and [0,10) are dropped as late.', 'initializer () -> ""; adder (key, value, agg) -> agg + "+" + value', mode='out', out_topic='output',
      notes='Topology: stream("topic").groupByKey().windowedBy(TimeWindows.ofSizeAndGrace(10, 90).advanceBy(10)).aggregate(() -> "", toStringInstance("+"), Materialized.as("topic1-Canonicalized").withValueSerde(String).withLoggingDisabled(), caching disabled).toStream().map(k.toString()).to("output"). The test asserts dropped-records-total 7.0, record-lateness-max 194.0, record-lateness-avg 97.375, and log lines "Skipping record for expired window ... window=[100,110) expiration=[110] streamTime=[200]" (the log prints windowEnd + grace computed as 110 here). Output keys are "[key@start/end]".'),
 case('windowed-aggregate', 'KStreamWindowAggregateTest', 'shouldLogAndMeterWhenSkippingExpiredWindowByGrace', 'inputType=ON_WINDOW_CLOSE, inputWithCache=false', 'tumbling-drop-late-by-grace-emit-on-close', 'windowed-aggregate',
      {'type': 'tumbling', 'size-ms': 10, 'advance-ms': 10, 'grace-ms': 90},
      'Same input with emit-on-window-close: nothing is emitted (the only accepted window [200,210) never closes).', 'initializer () -> ""; adder (key, value, agg) -> agg + "+" + value', emit='on-window-close', mode='out', out_topic='output',
      notes='The test does not read the output topic in the emit-final variant (only the metrics: dropped-records-total 7.0 etc.); nothing was produced in the recorded run.'),
]

SW = lambda d, g: {'type': 'sliding', 'time-difference-ms': d, 'grace-ms': g}
SLN = ('Topology: builder.stream("topic").groupByKey().windowedBy(SlidingWindows.%s).emitStrategy(%s).%s.toStream().process(MockApiProcessorSupplier). '
       'Sliding windows are [start, end] with end - start = timeDifference, both bounds inclusive; Windowed.window().end() is the inclusive end. ')
REV = ('The test runs with inputInOrderIterator=false: %s KStreamSlidingWindowAggregate detects that the store can iterate backwards and takes its processReverse path, as with Kafka\'s default stores (RocksDB, Stores.inMemoryWindowStore). '
       '(With inputInOrderIterator=true, tests that build their store with setupWindowBytesStoreSupplier use a test-only InOrderMemoryWindowStore without backward fetch, which switches to processInOrder: the same updates, except that the existing windows one record falls into are updated and forwarded in ascending instead of descending window-start order. Records earlier than timeDifference take processEarly on either path.) ')
REV_SUPPLIER = REV % 'the store is Stores.inMemoryWindowStore("Reverse1", retention 50000 ms, window size 10 ms, no duplicates), so'
REV_DEFAULT = REV % 'the parameter does not change this case\'s store (the default RocksDB window store), so the output is the same for both values;'
CACHE_ON = 'enabled (Materialized default: setupMaterialized disables caching only for ON_WINDOW_CLOSE with inputWithCache=false; 10 MB cache, flushed by TopologyTestDriver after every input record)'
CACHE_OFF = 'disabled (ON_WINDOW_CLOSE with inputWithCache=false: Materialized...withCachingDisabled())'
CASES += [
 case('windowed-sliding', 'KStreamSlidingWindowAggregateTest', 'testAggregateSmallInput', 'inputType=ON_WINDOW_UPDATE, inputInOrderIterator=false, inputWithCache=false', 'sliding-aggregate-small', 'sliding-aggregate', SW(10, 5),
      'Sliding windows (difference 10, grace 5): each record creates its left window [ts-10, ts] and, when needed, the right window [ts+1, ts+11] of earlier records; existing windows containing the record are updated; windows with no records are never created.', AGG,
      notes=SLN % ('ofTimeDifferenceAndGrace(ofMillis(10), ofMillis(5))', 'onWindowUpdate', 'aggregate(STRING_INIT, TOSTRING_ADDER, Materialized.as(storeSupplier), caching left at its default: enabled)') + REV_SUPPLIER + ORDER_SET, caching=CACHE_ON),
 case('windowed-sliding', 'KStreamSlidingWindowAggregateTest', 'testAggregateSmallInput', 'inputType=ON_WINDOW_CLOSE, inputInOrderIterator=false, inputWithCache=false', 'sliding-aggregate-small-emit-on-close', 'sliding-aggregate', SW(10, 5),
      'Same input with emit-on-window-close: only final values of windows closed by stream time are emitted.', AGG, emit='on-window-close',
      notes=SLN % ('ofTimeDifferenceAndGrace(ofMillis(10), ofMillis(5))', 'onWindowClose', 'aggregate(STRING_INIT, TOSTRING_ADDER, Materialized.as("store-name").withCachingDisabled())') + REV_DEFAULT + ORDER_SET, caching=CACHE_OFF),
 case('windowed-sliding', 'KStreamSlidingWindowAggregateTest', 'testReduceSmallInput', 'inputType=ON_WINDOW_UPDATE, inputInOrderIterator=false, inputWithCache=false', 'sliding-reduce-small', 'sliding-aggregate', SW(10, 5),
      'Sliding-window reduce (difference 10, grace 5).', RED,
      notes=SLN % ('ofTimeDifferenceAndGrace(ofMillis(10), ofMillis(5))', 'onWindowUpdate', 'reduce(STRING_ADDER, Materialized.as(storeSupplier), caching left at its default: enabled)') + REV_SUPPLIER + ORDER_SET, caching=CACHE_ON),
 case('windowed-sliding', 'KStreamSlidingWindowAggregateTest', 'testEarlyRecordsSmallInput', 'inputType=ON_WINDOW_UPDATE, inputInOrderIterator=false, inputWithCache=false', 'sliding-early-records', 'sliding-aggregate', SW(50, 0),
      'Sliding windows with records at timestamps < timeDifference ("early records"): their left windows start at 0 ([0, 50]) instead of a negative start.', AGG,
      notes=SLN % ('ofTimeDifferenceAndGrace(ofMillis(50), ofMillis(0))', 'onWindowUpdate', 'aggregate(STRING_INIT, TOSTRING_ADDER, Materialized.as("topic-Canonized").withValueSerde(String), caching left at its default: enabled)') + REV_DEFAULT + ORDER_SET, caching=CACHE_ON),
 case('windowed-sliding', 'KStreamSlidingWindowAggregateTest', 'testNoGracePeriodSmallInput', 'inputType=ON_WINDOW_UPDATE, inputInOrderIterator=false, inputWithCache=false', 'sliding-no-grace', 'sliding-aggregate', SW(50, 0),
      'Sliding windows without grace: out-of-order records for closed windows are dropped, in-window ones still update open windows.', AGG,
      notes=SLN % ('ofTimeDifferenceWithNoGrace(ofMillis(50))', 'onWindowUpdate', 'aggregate(STRING_INIT, TOSTRING_ADDER, Materialized.as("topic-Canonized").withValueSerde(String), caching left at its default: enabled)') + REV_DEFAULT + ORDER_SET, caching=CACHE_ON),
 case('windowed-sliding', 'KStreamSlidingWindowAggregateTest', 'testEarlyNoGracePeriodSmallInput', 'inputType=ON_WINDOW_UPDATE, inputInOrderIterator=false, inputWithCache=false', 'sliding-early-no-grace', 'sliding-aggregate', SW(50, 0),
      'Early records (ts < timeDifference) with no grace.', AGG,
      notes=SLN % ('ofTimeDifferenceWithNoGrace(ofMillis(50))', 'onWindowUpdate', 'aggregate(STRING_INIT, TOSTRING_ADDER, Materialized.as("topic-Canonized").withValueSerde(String), caching left at its default: enabled)') + REV_DEFAULT + ORDER_SET, caching=CACHE_ON),
 case('windowed-sliding', 'KStreamSlidingWindowAggregateTest', 'shouldLogAndMeterWhenSkippingExpiredWindowByGrace', 'inputType=ON_WINDOW_UPDATE, inputInOrderIterator=false, inputWithCache=false', 'sliding-drop-late-by-grace', 'sliding-aggregate', SW(10, 90),
      'Sliding windows (difference 10, grace 90): records whose windows closed before stream time are dropped and metered.', AGG, mode='out', out_topic='output', caching=CACHE_ON,
      notes='Topology: stream("topic").groupByKey().windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(ofMillis(10), ofMillis(90))).emitStrategy(onWindowUpdate).aggregate(STRING_INIT, TOSTRING_ADDER, Materialized.as(storeSupplier), caching left at its default: enabled).toStream().to("output"). '
            'The test reads "output" with TimeWindowedDeserializer(StringDeserializer, window size 10), so each key is read back as a Windowed key with window end = start + 10 (the sliding window\'s inclusive end). '
            'The test also asserts dropped-records-total 7.0, record-lateness-max 185.0, record-lateness-avg 77.0, and the log line "Skipping record for expired window. ... window=[90,100] expiration=[110] streamTime=[200]" and the like for the 7 records with timestamps 100..105 and 15. ' + REV_SUPPLIER.strip()),
 case('windowed-sliding', 'SlidingWindowedKStreamImplTest', 'shouldCountSlidingWindows', None, 'sliding-count', 'sliding-count', SW(100, 1000),
      'Sliding-window count (difference 100, grace 1000) over 2 keys.', CNT, mode='proc-all',
      notes='Topology (before()): stream("input").groupByKey().windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(ofMillis(100L), ofMillis(1000L))).count().toStream().process(supplier). The test only asserts the LAST value/timestamp per window (lastValueAndTimestampPerKey): [1@0/100]=1@100, [1@101/201]=1@150, [1@50/150]=2@150, [1@400/500]=1@500, [2@100/200]=2@200. The full sequence listed is what kafka-streams 4.0.0 forwarded.', caching='default config'),
]

SE = {'type': 'session', 'gap-ms': 500, 'grace-ms': 0}
SEN = ('Topology: builder.stream("input").groupByKey().windowedBy(SessionWindows.ofInactivityGapWithNoGrace(ofMillis(500))).emitStrategy(%s).%s.toStream().process(supplier); the test asserts the whole processed() list. '
       'Session windows are [first ts, last ts] with an INCLUSIVE end (a single-record session is [ts, ts]); when a record merges sessions, the old session(s) are deleted by forwarding a tombstone (value null, with the old session\'s timestamp) before the merged session.')
MERGER = 'session merger (aggKey, aggOne, aggTwo) -> aggOne + "+" + aggTwo'
CASES += [
 case('windowed-session', 'SessionWindowedKStreamImplTest', 'shouldCountSessionWindowedWithCachingDisabled', 'inputType=ON_WINDOW_UPDATE', 'session-count-emit-on-update', 'session-count', SE,
      'Session count, gap 500, no grace, caching disabled: merges produce a tombstone for the old session then the merged session.', CNT,
      notes=SEN % ('onWindowUpdate', 'count()') + ' props STATESTORE_CACHE_MAX_BYTES_CONFIG = 0.', caching='disabled (statestore.cache.max.bytes=0)'),
 case('windowed-session', 'SessionWindowedKStreamImplTest', 'shouldCountSessionWindowedWithCachingDisabled', 'inputType=ON_WINDOW_CLOSE', 'session-count-emit-on-close', 'session-count', SE,
      'Session count with emit-on-window-close: only the session closed by stream time (end + gap + grace < stream time) is emitted.', CNT, emit='on-window-close',
      notes=SEN % ('onWindowClose', 'count()') + ' props STATESTORE_CACHE_MAX_BYTES_CONFIG = 0.', caching='disabled (statestore.cache.max.bytes=0)'),
 case('windowed-session', 'SessionWindowedKStreamImplTest', 'shouldAggregateSessionWindowed', 'inputType=ON_WINDOW_UPDATE', 'session-aggregate-merge', 'session-aggregate', SE,
      'Session aggregate with merger: merging a new record into an existing session computes merger(initializer, existingAgg) then adds the value, e.g. "0+0+1+2".', AGG + '; ' + MERGER,
      notes=SEN % ('onWindowUpdate', 'aggregate(STRING_INIT, TOSTRING_ADDER, sessionMerger, Materialized.with(String, String))'), caching='default config (10 MB cache), flushed by TopologyTestDriver after every record'),
 case('windowed-session', 'SessionWindowedKStreamImplTest', 'shouldReduceWindowed', 'inputType=ON_WINDOW_UPDATE', 'session-reduce', 'session-aggregate', SE,
      'Session reduce with string concatenation.', RED,
      notes=SEN % ('onWindowUpdate', 'reduce(MockReducer.STRING_ADDER)'), caching='default config (10 MB cache), flushed by TopologyTestDriver after every record'),
]
