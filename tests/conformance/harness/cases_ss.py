from gen import KAFKA_TEST_DIR
P = 'apache/kafka ' + KAFKA_TEST_DIR

def win(before, after, grace, extra=None):
    w = {'type': 'join', 'before-ms': before, 'after-ms': after, 'grace-ms': grace}
    if extra: w.update(extra)
    return w

JOINER = 'MockValueJoiner.TOSTRING_JOINER: left + "+" + right (Java string concatenation, so a missing side prints as "null"; Long right values print as decimal)'
TOPICS = {'topic1': 'left', 'topic2': 'right'}
COMMON_NOTE = ("Topology: builder.stream(topic1) is the left stream, builder.stream(topic2) the right stream (renamed left/right here); "
               "joined.process(MockApiProcessorSupplier) captures the join output, which is what the test checks. "
               "Stream-stream joins use no record cache. TopologyTestDriver sets the internal emit interval for "
               "left/outer non-joined results (__emit.interval.ms.kstreams.outer.join.spurious.results.fix__) to 0, so non-joined results are not throttled by wall-clock time.")

def ss(cls, method, name, join, window, desc, serdes, notes='', windowdef=None, **kw):
    c = {'family': 'stream-stream-join', 'name': name, 'rec': (cls, method + '()'),
         'source': P + cls + '.java#' + method + ' (Kafka 4.0.0)',
         'description': desc, 'operation': 'stream-stream-join', 'join': join,
         'window': window, 'joiner': JOINER, 'serdes': serdes, 'caching': 'n/a (join window stores are not cached)',
         'topics': TOPICS, 'notes': ((('JoinWindows as written in the test: ' + windowdef + '. ') if windowdef else '') + notes + ' ' + COMMON_NOTE).strip()}
    c.update(kw)
    return c

S_STR = 'keys Integer; left values String; right values String'
S_LONG = 'keys Integer; left values String; right values Long'
OLD = {'spurious-result-fix': False}
G24 = 86400000 - 200

CASES = [
 ss('KStreamKStreamJoinTest', 'testJoin', 'inner-join-basic', 'inner', win(100, 100, 0),
    'Inner join with all records at timestamp 0: every new record joins with every record of the same key already in the other window; output order follows the other window store iteration order (insertion order for equal timestamps).',
    S_STR, windowdef='JoinWindows.ofTimeDifferenceWithNoGrace(ofMillis(100L))',
    notes='Inputs without explicit timestamp use the input topic\'s start time 0 (createInputTopic(..., Instant.ofEpochMilli(0L), Duration.ZERO)).'),
 ss('KStreamKStreamJoinTest', 'testOuterJoin', 'outer-join-large-grace-all-ts0', 'outer', win(100, 100, 86400000),
    'Outer join with a 24h grace period and all records at timestamp 0: only matched results are emitted; unmatched records stay buffered because stream time never passes window end + grace.',
    S_STR, windowdef='JoinWindows.ofTimeDifferenceAndGrace(ofMillis(100L), ofHours(24L))'),
 ss('KStreamKStreamJoinTest', 'testWindowing', 'inner-join-window-bounds', 'inner', win(100, 100, 0),
    'Inner join window bounds: a right record joins left records with |ts difference| <= 100 (both bounds inclusive), tested at the upper and lower edge from both sides; join results carry max(left ts, right ts).',
    S_STR, windowdef='JoinWindows.ofTimeDifferenceWithNoGrace(ofMillis(100L))',
    notes='Records arriving with timestamp 899 when stream time is already > 1100 are simply not joined (no output).'),
 ss('KStreamKStreamJoinTest', 'testAsymmetricWindowingAfter', 'inner-join-asymmetric-after', 'inner', win(0, 100, 0),
    'Asymmetric join window before=0, after=100: a right record joins a left record iff 0 <= right.ts - left.ts <= 100.',
    S_STR, windowdef='JoinWindows.ofTimeDifferenceWithNoGrace(ofMillis(0)).after(ofMillis(100))'),
 ss('KStreamKStreamJoinTest', 'testAsymmetricWindowingBefore', 'inner-join-asymmetric-before', 'inner', win(100, 0, 0),
    'Asymmetric join window before=100, after=0: a right record joins a left record iff 0 <= left.ts - right.ts <= 100.',
    S_STR, windowdef='JoinWindows.ofTimeDifferenceWithNoGrace(ofMillis(0)).before(ofMillis(100))'),

 ss('KStreamKStreamLeftJoinTest', 'testLeftJoinDuplicates', 'left-join-duplicates', 'left', win(100, 100, 10),
    'Left join with duplicate left records (same key and timestamp): both unmatched duplicates are emitted as (v, null) once stream time passes ts+after+grace; matched duplicates join individually; an out-of-order record does not re-emit them.',
    S_STR, windowdef='JoinWindows.ofTimeDifferenceAndGrace(ofMillis(100L), ofMillis(10L))'),
 ss('KStreamKStreamLeftJoinTest', 'testLeftExpiredNonJoinedRecordsAreEmittedByTheLeftProcessor', 'left-join-expired-emitted-by-left-input', 'left', win(100, 100, 0),
    'An unmatched left record is emitted as (A, null) when a later LEFT-side record advances stream time past its window close.',
    S_STR, windowdef='JoinWindows.ofTimeDifferenceAndGrace(ofMillis(100L), ofMillis(0L))'),
 ss('KStreamKStreamLeftJoinTest', 'testLeftExpiredNonJoinedRecordsAreEmittedByTheRightProcessor', 'left-join-expired-emitted-by-right-input', 'left', win(100, 100, 0),
    'An unmatched left record is emitted as (A, null) when a later RIGHT-side record advances stream time past its window close (stream time is shared by both sides).',
    S_STR, windowdef='JoinWindows.ofTimeDifferenceAndGrace(ofMillis(100L), ofMillis(0L))'),
 ss('KStreamKStreamLeftJoinTest', 'testRightNonJoinedRecordsAreNeverEmittedByTheLeftProcessor', 'left-join-right-unmatched-never-emitted-left-input', 'left', win(100, 100, 0),
    'In a left join, unmatched right records are never emitted, even after their window closes (triggered from the left side).',
    S_STR, windowdef='JoinWindows.ofTimeDifferenceAndGrace(ofMillis(100L), ofMillis(0L))'),
 ss('KStreamKStreamLeftJoinTest', 'testRightNonJoinedRecordsAreNeverEmittedByTheRightProcessor', 'left-join-right-unmatched-never-emitted-right-input', 'left', win(100, 100, 0),
    'In a left join, unmatched right records are never emitted, even after their window closes (triggered from the right side).',
    S_STR, windowdef='JoinWindows.ofTimeDifferenceWithNoGrace(ofMillis(100L))'),
 ss('KStreamKStreamLeftJoinTest', 'testLeftJoinedRecordsWithZeroAfterAreEmitted', 'left-join-zero-after', 'left', win(100, 0, 0),
    'Left join with after=0: left records are emitted as (A, null) as soon as stream time moves past their own timestamp; right records older than the left record by <= 100 still join.',
    S_STR, windowdef='JoinWindows.ofTimeDifferenceWithNoGrace(ofMillis(100)).after(ZERO)'),
 ss('KStreamKStreamLeftJoinTest', 'testLeftJoinWithDefaultSuppliers', 'left-join-basic', 'left', win(100, 100, 0),
    'Basic left join (runLeftJoin helper, default store suppliers), all records at ts 0: each new record joins all same-key records of the other side; every left record ends up matched, so the final dummy record (ts 1000) that closes all windows emits nothing.',
    S_STR, windowdef='JoinWindows.ofTimeDifferenceWithNoGrace(ofMillis(100L))'),
 ss('KStreamKStreamLeftJoinTest', 'testOrdering', 'left-join-ordering', 'left', win(100, 100, 0),
    'When one input both closes an earlier unmatched window and produces a join, the expired (A0, null) result is forwarded before the new join result.',
    S_STR, windowdef='JoinWindows.ofTimeDifferenceWithNoGrace(ofMillis(100L))'),
 ss('KStreamKStreamLeftJoinTest', 'testGracePeriod', 'left-join-grace-period', 'left', win(100, 100, 10),
    'Left join with grace 10: right records at ts 101 fall outside the window (no join), unmatched lefts are only emitted once stream time > ts + after + grace; a much later dummy record flushes them.',
    S_STR, windowdef='JoinWindows.ofTimeDifferenceAndGrace(ofMillis(100L), ofMillis(10L))'),
 ss('KStreamKStreamLeftJoinTest', 'testWindowing', 'left-join-window-bounds', 'left', win(100, 100, 0),
    'Left join window bounds (upper and lower bound helpers): records just outside the window produce no join; late left records whose window is already closed are emitted as (v, null) immediately; delayed (v, null) results are flushed by a dummy record.',
    S_STR, windowdef='JoinWindows.ofTimeDifferenceWithNoGrace(ofMillis(100))'),
 ss('KStreamKStreamLeftJoinTest', 'shouldNotEmitLeftJoinResultForAsymmetricWindow', 'left-join-asymmetric-before-zero', 'left', win(0, 100, 0),
    'Left join with before=0: a left record matched by a later right record is not emitted again as (v, null); the unmatched one is emitted once its window closes.',
    S_STR, windowdef='JoinWindows.ofTimeDifferenceWithNoGrace(ofMillis(100)).before(ZERO)'),
 ss('KStreamKStreamLeftJoinTest', 'testLeftJoinWithSpuriousResultFixDisabledOldApi', 'left-join-old-api-eager', 'left', win(100, 100, G24, OLD),
    'Deprecated JoinWindows.of(100) (spurious-result fix disabled): left records with no match are emitted EAGERLY as (A, null) on arrival, and joined again when the right record arrives.',
    S_STR, windowdef='JoinWindows.of(ofMillis(100L)) (deprecated)',
    notes='With the deprecated API the grace defaults to max(24h - 2*100ms, 0) = 86399800 ms, and no outer-join store is created (the test asserts only 2 state stores).'),
 ss('KStreamKStreamLeftJoinTest', 'testLeftJoinDuplicatesWithSpuriousResultFixDisabledOldApi', 'left-join-duplicates-old-api-eager', 'left', win(100, 100, 10, OLD),
    'Deprecated JoinWindows.of(100).grace(10): duplicate left records are each emitted eagerly as (v, null), then each joins the right record.',
    S_STR, windowdef='JoinWindows.of(ofMillis(100L)).grace(ofMillis(10L)) (deprecated)'),

 ss('KStreamKStreamOuterJoinTest', 'testOuterJoinDuplicates', 'outer-join-duplicates', 'outer', win(100, 100, 10),
    'Outer join with duplicates on both sides: unmatched left and right duplicates are emitted after window close, ordered by timestamp, then RIGHT side before LEFT side, then key; matched duplicates each join.',
    S_LONG, windowdef='JoinWindows.ofTimeDifferenceAndGrace(ofMillis(100L), ofMillis(10L))'),
 ss('KStreamKStreamOuterJoinTest', 'testOuterJoinDuplicatesWithFixDisabledOldApi', 'outer-join-duplicates-old-api-eager', 'outer', win(100, 100, 10, OLD),
    'Deprecated JoinWindows.of(100).grace(10): unmatched records on either side are emitted eagerly as (v, null) / (null, v) on arrival.',
    S_LONG, windowdef='JoinWindows.of(ofMillis(100L)).grace(ofMillis(10L)) (deprecated)'),
 ss('KStreamKStreamOuterJoinTest', 'testLeftExpiredNonJoinedRecordsAreEmittedByTheLeftProcessor', 'outer-join-left-expired-emitted-by-left-input', 'outer', win(100, 100, 0),
    'Outer join: an unmatched left record is emitted as (A, null) when a later left-side record closes its window.',
    S_LONG, windowdef='JoinWindows.ofTimeDifferenceWithNoGrace(ofMillis(100L))'),
 ss('KStreamKStreamOuterJoinTest', 'testLeftExpiredNonJoinedRecordsAreEmittedByTheRightProcessor', 'outer-join-left-expired-emitted-by-right-input', 'outer', win(100, 100, 0),
    'Outer join: an unmatched left record is emitted as (A, null) when a later right-side record closes its window.',
    S_LONG, windowdef='JoinWindows.ofTimeDifferenceAndGrace(ofMillis(100L), ofMillis(0L))'),
 ss('KStreamKStreamOuterJoinTest', 'testRightExpiredNonJoinedRecordsAreEmittedByTheLeftProcessor', 'outer-join-right-expired-emitted-by-left-input', 'outer', win(100, 100, 0),
    'Outer join: an unmatched right record is emitted as (null, a) when a later left-side record closes its window.',
    S_LONG, windowdef='JoinWindows.ofTimeDifferenceWithNoGrace(ofMillis(100L))'),
 ss('KStreamKStreamOuterJoinTest', 'testRightExpiredNonJoinedRecordsAreEmittedByTheRightProcessor', 'outer-join-right-expired-emitted-by-right-input', 'outer', win(100, 100, 0),
    'Outer join: an unmatched right record is emitted as (null, a) when a later right-side record closes its window.',
    S_LONG, windowdef='JoinWindows.ofTimeDifferenceAndGrace(ofMillis(100L), ofMillis(0L))'),
 ss('KStreamKStreamOuterJoinTest', 'testOrdering', 'outer-join-ordering', 'outer', win(100, 100, 0),
    'Expired non-joined results are forwarded before the join result produced by the same input record.',
    S_LONG, windowdef='JoinWindows.ofTimeDifferenceWithNoGrace(ofMillis(100))'),
 ss('KStreamKStreamOuterJoinTest', 'testGracePeriod', 'outer-join-grace-period', 'outer', win(100, 100, 10),
    'Outer join with grace 10: records outside the window do not join; unmatched results are only emitted once stream time passes ts + window + grace.',
    S_LONG, windowdef='JoinWindows.ofTimeDifferenceAndGrace(ofMillis(100), ofMillis(10))'),
 ss('KStreamKStreamOuterJoinTest', 'testEmitAllNonJoinedResultsForAsymmetricWindow', 'outer-join-asymmetric-emit-all', 'outer', win(5, 20, 0),
    'Asymmetric outer join window (before=5, after=20): a left record is unmatched-closed at ts+20 but a right record at ts+5 (right-side records look back "before" ms); emission order of expired results is by timestamp.',
    S_LONG, windowdef='JoinWindows.ofTimeDifferenceWithNoGrace(ofMillis(5)).after(ofMillis(20))'),
 ss('KStreamKStreamOuterJoinTest', 'testOuterJoinWithDefaultSuppliers', 'outer-join-basic', 'outer', win(100, 100, 0),
    'Basic outer join (runOuterJoin helper, default store suppliers), all records at ts 0: joins only; every record ends up matched, so the final dummy record (ts 400) that closes all windows emits nothing.',
    S_LONG, windowdef='JoinWindows.ofTimeDifferenceWithNoGrace(ofMillis(100L))'),
 ss('KStreamKStreamOuterJoinTest', 'testWindowing', 'outer-join-window-bounds', 'outer', win(100, 100, 0),
    'Outer join window bounds (upper and lower bound helpers), with delayed (v, null)/(null, v) results flushed by a dummy record.',
    S_LONG, windowdef='JoinWindows.ofTimeDifferenceWithNoGrace(ofMillis(100))'),
 ss('KStreamKStreamOuterJoinTest', 'testShouldNotEmitLeftJoinResultForAsymmetricBeforeWindow', 'outer-join-asymmetric-before-zero', 'outer', win(0, 100, 0),
    'Outer join with before=0: matched records are not emitted again as non-joined; unmatched ones are emitted when their window closes.',
    S_LONG, windowdef='JoinWindows.ofTimeDifferenceWithNoGrace(ofMillis(100)).before(ZERO)'),
 ss('KStreamKStreamOuterJoinTest', 'testShouldNotEmitLeftJoinResultForAsymmetricAfterWindow', 'outer-join-asymmetric-after-zero', 'outer', win(100, 0, 0),
    'Outer join with after=0: matched records are not emitted again as non-joined; unmatched ones are emitted when their window closes.',
    S_LONG, windowdef='JoinWindows.ofTimeDifferenceWithNoGrace(ofMillis(100)).after(ZERO)'),
]
