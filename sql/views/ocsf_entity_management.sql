-- ocsf_entity_management: every key created, changed or destroyed, as an OCSF 1.x Entity Management event (class 3004, category 3 Identity & Access Management), flattened to columns.
-- Filled: class_uid 3004, class_name 'Entity Management', category_uid 3, activity_id from the catalog's category
-- (key_create 1 'Create', key_modify 3 'Update', key_destroy 4 'Delete'), type_uid class_uid * 100 + activity_id,
-- status_id 1 'Success' / 2 'Failure' / 0 'Unknown' from outcome, status_detail the vendor's status text, severity_id 1
-- (Informational), time, actor_user_name (actor_id), src_endpoint_ip (client_ip), device_uid (hsm_id),
-- api_operation (the vendor's action), resource_uid (ouid: the managed entity's uid, the key), metadata_uid
-- (trace_id), metadata_product_vendor_name and metadata_product_name from vendor; tenant_id and day kept so
-- filters on them prune partitions.
CREATE VIEW ocsf_entity_management AS
SELECT 3004                                                   AS class_uid,
       'Entity Management'                                    AS class_name,
       3                                                      AS category_uid,
       CASE category WHEN 'key_create' THEN 1 WHEN 'key_modify' THEN 3 ELSE 4 END AS activity_id,
       CASE category WHEN 'key_create' THEN 'Create' WHEN 'key_modify' THEN 'Update' ELSE 'Delete' END AS activity_name,
       300400 + CASE category WHEN 'key_create' THEN 1 WHEN 'key_modify' THEN 3 ELSE 4 END AS type_uid,
       CASE outcome WHEN 'success' THEN 1 WHEN 'failure' THEN 2 ELSE 0 END AS status_id,
       CASE outcome WHEN 'success' THEN 'Success' WHEN 'failure' THEN 'Failure' ELSE 'Unknown' END AS status,
       status                                                 AS status_detail,
       1                                                      AS severity_id,
       time,
       actor_id                                               AS actor_user_name,
       client_ip                                              AS src_endpoint_ip,
       hsm_id                                                 AS device_uid,
       action                                                 AS api_operation,
       ouid                                                   AS resource_uid,
       trace_id                                               AS metadata_uid,
       CASE vendor WHEN 'dpod' THEN 'Thales' WHEN 'aws-cloudhsm' THEN 'Amazon Web Services'
            WHEN 'azure-keyvault' THEN 'Microsoft' WHEN 'azure-mhsm' THEN 'Microsoft'
            WHEN 'gcp-kms' THEN 'Google' WHEN 'hashicorp-vault' THEN 'HashiCorp' ELSE vendor END
                                                              AS metadata_product_vendor_name,
       CASE vendor WHEN 'dpod' THEN 'Data Protection on Demand' WHEN 'aws-cloudhsm' THEN 'AWS CloudHSM'
            WHEN 'azure-keyvault' THEN 'Azure Key Vault' WHEN 'azure-mhsm' THEN 'Azure Key Vault Managed HSM'
            WHEN 'gcp-kms' THEN 'Cloud KMS' WHEN 'hashicorp-vault' THEN 'Vault' ELSE vendor END
                                                              AS metadata_product_name,
       tenant_id,
       day
FROM events_categorized
WHERE category IN ('key_create', 'key_modify', 'key_destroy');
