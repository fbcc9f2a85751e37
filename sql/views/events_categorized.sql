-- events_categorized: every event with the category of its action ('other' when the catalog does not know it).
-- The building block of the other views; keeps tenant_id and day so filters on them prune partitions.
CREATE VIEW events_categorized AS
SELECT e.*, COALESCE(c.category, 'other') AS category
FROM events e
LEFT JOIN action_catalog c ON c.vendor = e.vendor AND c.action = e.action;
