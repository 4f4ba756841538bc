"""Foreign-key table-table joins (KIP-213: KTable#join(other, foreignKeyExtractor, joiner) and
leftJoin): cases from KTableKTableForeignKeyJoinIntegrationTest and
KTableKTableForeignKeyJoinMaterializationIntegrationTest (both run on TopologyTestDriver; they are
not in kafka-streams-4.0.0-test.jar, so build-extra.sh compiles them against 4.0.0 from
extra/src) and KTableKTableForeignKeyJoinScenarioTest (in the test jar).

Record first:
  ./build-extra.sh
  ./run-recorded.sh org.apache.kafka.streams.integration.KTableKTableForeignKeyJoinIntegrationTest \
      org.apache.kafka.streams.integration.KTableKTableForeignKeyJoinMaterializationIntegrationTest \
      KTableKTableForeignKeyJoinScenarioTest
"""
from gen import KAFKA_TEST_DIR

IT = 'streams/src/test/java/org/apache/kafka/streams/integration/'
IT_SRC = ('apache/kafka ' + IT + '%s.java#%s (at commit 1eb7644349cb07139d6a3c1ad1986979647cac99, '
          'compiled and run against kafka-streams 4.0.0)')
UNIT_SRC = 'apache/kafka ' + KAFKA_TEST_DIR + '%s.java#%s (Kafka 4.0.0)'
TTD = 'TopologyTestDriver commits (and so flushes any record cache) after every input record and pipes the records of internal topics (subscription registration and response) back in before the next input.'
PAREN = 'joiner = (value1, value2) -> "(" + value1 + "," + value2 + ")" (Java string concatenation: a missing side prints "null")'
REJOIN = 'rejoiner = (value1, value2) -> "rejoin(" + value1 + "," + value2 + ")"'
AFTER_BAR = 'value -> value.split("\\\\|")[1] (the part after "|")'
FK_IT = 'KTableKTableForeignKeyJoinIntegrationTest'
KV = ('4.0.0 (the test from apache/kafka at the commit named in source, which kafka-streams-4.0.0-test.jar does not ship, '
      'compiled and run against kafka-streams 4.0.0 and its test jars)')
IT_TOPICS = {'left_table': 'left', 'right_table': 'right'}
# The parameters of the integration test: leftJoin, optimization, materialized, rejoin, leftVersioned, rightVersioned.
PLAIN = 'none, false, false, false, false'
REJOINED = 'none, true, true, false, false'

def keep_user_topics(topics):
    def post(inputs, expected):
        kept = [i for i in inputs if 'topic' not in i or i['topic'] in topics.values()]
        return kept, expected
    return post

def it(method, name, join, desc, params=PLAIN, extractor=AFTER_BAR, notes=''):
    rejoin = params == REJOINED
    with_join = method not in ('shouldEmitRecordOnNullForeignKeyForLeftJoins', 'shouldEmitRecordWhenOldAndNewFkDiffer')
    sel = ('] %s, %s' % ('true' if join == 'left' else 'false', params)) if with_join else ('] ' + params)
    op = 'leftJoin' if join == 'left' else 'join'
    topo = ('left = builder.table("left_table"); right = builder.table("right_table") (String keys and values); '
            'fkJoin = left.%s(right, extractor, joiner, Materialized%s.withCachingDisabled()); fkJoin.toStream().to("output-topic")'
            % (op, '.as(inMemoryKeyValueStore("store"))' if rejoin else '.with(null, String)'))
    if rejoin:
        topo += ('; fkJoin.%s(left, rejoiner, Materialized.as(inMemoryKeyValueStore("store-rejoin")).withCachingDisabled()).toStream().to("rejoin-output-topic")' % op)
    c = {'family': 'table-table-fk-join', 'name': name, 'rec': (FK_IT, sel, method), 'mode': 'out', 'kafka-version': KV, 'source': IT_SRC % (FK_IT, method), 'description': desc,
         'operation': 'table-table-fk-join', 'join': join, 'foreign-key-extractor': extractor, 'joiner': PAREN,
         'materialized': 'store' if rejoin else False,
         'serdes': 'keys String, values String', 'caching': 'disabled on the join result (withCachingDisabled); the driver flushes after every record',
         'topics': IT_TOPICS, 'show-out-topic': rejoin,
         'notes': ('Topology: ' + topo + '. Test parameters: leftJoin=%s, optimization=none, materialized=%s, rejoin=%s, no versioned tables. '
                   'The test reads the output with readKeyValuesToMap (the last value per key); the records here are every record it read, in order. '
                   'Timestamps are the test\'s MockTime base (wall-clock milliseconds at the run) plus small offsets. ' % tuple('true' if b else 'false' for b in (join == 'left', rejoin, rejoin)) + notes + ' ' + TTD).strip()}
    if rejoin:
        c['rejoin'] = REJOIN + ('; a %s table-table join of the foreign-key join result (left side) with the left table (right side)' % ('left' if join == 'left' else 'inner'))
    c['postprocess'] = keep_user_topics(IT_TOPICS)
    return c

CASES = []
for join in ('inner', 'left'):
    CASES += [
        it('doJoinFromLeftThenDeleteLeftEntity', join + '-join-from-left-then-delete-left', join,
           'Right rows first, then left rows that join them, then a left tombstone: the result for that key is deleted (a left join sends the tombstone twice: once for the old foreign key\'s retraction, once for the null foreign key of the deleted row).'),
        it('doJoinFromRightThenDeleteRightEntity', join + '-join-from-right-then-delete-right', join,
           'Left rows first, then right rows: each right update fans out to every left row subscribed to its key; a right tombstone deletes (inner) or nulls out (left) the results of all its subscribers.'),
        it('shouldEmitTombstoneWhenDeletingNonJoiningRecords', join + '-tombstone-when-deleting-non-joining', join,
           'A left row whose foreign key has no right row, then deleted twice: the first delete sends a tombstone (the join cannot know whether a result was sent), the second nothing.'),
        it('shouldNotEmitTombstonesWhenDeletingNonExistingRecords', join + '-no-tombstone-for-missing-left', join,
           'Deleting a left key that never existed sends nothing.'),
        it('joinShouldProduceNullsWhenValueHasNonMatchingForeignKey', join + '-non-matching-foreign-key', join,
           'A left row changes its foreign key among keys with no right row (inner: a tombstone each time; left: (v,null)), a right row for an unreferenced key sends nothing, then the row points to it and joins, then away again.'),
        it('shouldUnsubscribeOldForeignKeyIfLeftSideIsUpdated', join + '-unsubscribes-old-foreign-key', join,
           'A left row moves from one right key to another: a later update of the old right row no longer reaches it.'),
        it('doJoinFromLeftThenDeleteLeftEntity', join + '-rejoin-from-left-then-delete-left', join,
           'doJoinFromLeftThenDeleteLeftEntity with the join result materialized and joined (table-table, on the primary key) with the left table again.', params=REJOINED),
        it('doJoinFromRightThenDeleteRightEntity', join + '-rejoin-from-right-then-delete-right', join,
           'doJoinFromRightThenDeleteRightEntity with the join result materialized and joined (table-table, on the primary key) with the left table again (the test reads only output-topic).', params=REJOINED),
    ]
CASES += [
    it('shouldEmitRecordOnNullForeignKeyForLeftJoins', 'left-null-foreign-key', 'left',
       'A left join whose extractor returns null joins the left row with no right value.',
       extractor='value -> null (every foreign key is null)'),
    it('shouldEmitRecordWhenOldAndNewFkDiffer', 'left-foreign-key-becomes-null', 'left',
       'A left join row whose foreign key goes from an existing key (no right row) to null: (v,null) each time.',
       extractor='value -> value.split("\\\\|")[1], or null when that is "returnNull"'),
]

MAT = 'KTableKTableForeignKeyJoinMaterializationIntegrationTest'
def mat(sel, name, materialized, desc):
    return {'family': 'table-table-fk-join', 'name': name, 'rec': (MAT, sel, 'shouldEmitTombstoneWhenDeletingNonJoiningRecords'), 'kafka-version': KV,
            'mode': 'out', 'source': IT_SRC % (MAT, 'shouldEmitTombstoneWhenDeletingNonJoiningRecords'),
            'description': desc, 'operation': 'table-table-fk-join', 'join': 'inner', 'foreign-key-extractor': AFTER_BAR,
            'joiner': PAREN, 'materialized': materialized, 'serdes': 'keys String, values String',
            'caching': 'default config (cache 10 MB), flushed after every record by TopologyTestDriver',
            'topics': IT_TOPICS, 'postprocess': keep_user_topics(IT_TOPICS),
            'notes': ('Topology: left = builder.table("left_table"); right = builder.table("right_table"); left.join(right, extractor, joiner%s).toStream().to("output-topic"). '
                      'Test parameters: %s. ' % ({False: '', True: ', Materialized.with(null, String)', 'store': ', Materialized.as("store")'}[materialized], sel.strip('] ')) + TTD)}
CASES += [
    mat('] false, false', 'inner-delete-non-joining-unmaterialized', False, 'An unmaterialized inner join: deleting a left row that never joined sends one tombstone, deleting it again nothing.'),
    mat('] true, false', 'inner-delete-non-joining-materialized-unnamed', True, 'Materialized.with(null, String) (no store name, so no queryable store and no cache): deleting a left row that never joined sends one tombstone.'),
    mat('] true, true', 'inner-delete-non-joining-materialized-cached', 'store', 'Materialized.as("store") with the record cache on: the cache drops the tombstone for a key that never had a result, so nothing is sent.'),
]

SC = 'KTableKTableForeignKeyJoinScenarioTest'
def sc(method, name, extractor, desc, topics, notes, **kw):
    c = {'family': 'table-table-fk-join', 'name': name, 'rec': (SC, method + '()'), 'mode': 'out',
         'source': UNIT_SRC % (SC, method), 'description': desc, 'operation': 'table-table-fk-join', 'join': 'inner',
         'foreign-key-extractor': extractor, 'joiner': 'joiner = (aVal, bVal) -> "(" + aVal + "," + bVal + ")"',
         'materialized': kw.pop('materialized', 'store'), 'topics': topics, 'postprocess': keep_user_topics(topics),
         'caching': 'default config (cache 10 MB), flushed after every record by TopologyTestDriver',
         'notes': (notes + ' ' + TTD).strip()}
    c.update(kw)
    return c

CASES += [
    sc('shouldWorkWithDefaultSerdes', 'inner-join-then-rejoin-integer-keys', 'value -> Integer.parseInt(value.split("-")[0])',
       'A foreign-key join materialized as "asdf", joined again (table-table, on the primary key) with its own left table; the left value 999-alpha names right key 999.',
       {'A': 'left', 'B': 'right'},
       'Topology: aTable = builder.table("A"); bTable = builder.table("B") (default serdes Integer keys, String values); fkJoinResult = aTable.join(bTable, extractor, joiner, Materialized.as("asdf")); aTable.join(fkJoinResult, (aVal, fkJoinVal) -> "(" + aVal + "," + fkJoinVal + ")").toStream().to("output"). Topics A/B renamed left/right.',
       serdes='keys Integer, values String', rejoin='(aVal, fkJoinVal) -> "(" + aVal + "," + fkJoinVal + ")": an inner table-table join of the left table (left side) with the foreign-key join result (right side)'),
    sc('shouldWorkWithCompositeKeyAndProducerIdInValue', 'inner-join-composite-key-fk-in-value', 'value -> value.split("\\\\|")[0] (the part before "|")',
       'Left rows keyed producer:product carry their producer in the value; right rows come after and each joins the rows that name it.',
       {'left_table': 'left', 'right_table': 'right'},
       'Topology: leftTable = builder.table("left_table"); rightTable = builder.table("right_table") (String keys and values); leftTable.join(rightTable, extractor, joiner, Materialized.as("store")).toStream().to("output").',
       serdes='keys String, values String'),
    sc('shouldWorkWithCompositeKeyAndBiFunctionExtractor', 'inner-join-fk-from-key', '(key, value) -> key.split(":")[0] (the left key\'s part before ":")',
       'The foreign key comes from the left key (a BiFunction extractor): rows keyed producer:product join the producer\'s row.',
       {'left_table': 'left', 'right_table': 'right'},
       'Topology: leftTable = builder.table("left_table"); rightTable = builder.table("right_table") (String keys and values); leftTable.join(rightTable, extractor, joiner, Materialized.as("store")).toStream().to("output").',
       serdes='keys String, values String'),
]
