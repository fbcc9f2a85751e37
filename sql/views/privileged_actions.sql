-- privileged_actions: every destroy, PIN change, partition init or zeroize, clone and replication — who, when, from where.
CREATE VIEW privileged_actions AS
SELECT *
FROM events_categorized
WHERE category IN ('key_destroy', 'user_admin', 'partition_admin', 'replication');
