-- ocsf_api_activity: every call that is not a login, as an OCSF 1.x API Activity event (class 6003, category 6 Application Activity), flattened to columns.
-- Filled: class_uid 6003, class_name 'API Activity', category_uid 6, activity_id from the catalog's category
-- (key_create 1 'Create', key_modify 3 'Update', key_destroy 4 'Delete', anything else 99 'Other'), type_uid
-- class_uid * 100 + activity_id, status_id 1 'Success' / 2 'Failure' / 0 'Unknown' from outcome, status_detail the vendor's
-- status text, severity_id 1 (Informational), time, actor_user_name (actor_id), src_endpoint_ip (client_ip),
-- device_uid (hsm_id), api_operation (the vendor's action), resource_uid (ouid: the key or object acted on),
-- metadata_uid (trace_id), metadata_product_vendor_name and metadata_product_name from vendor; tenant_id and day
-- kept so filters on them prune partitions. Logins are in ocsf_authentication instead.
CREATE VIEW ocsf_api_activity AS
SELECT 6003                                                   AS class_uid,
       'API Activity'                                         AS class_name,
       6                                                      AS category_uid,
       CASE category WHEN 'key_create' THEN 1 WHEN 'key_modify' THEN 3 WHEN 'key_destroy' THEN 4 ELSE 99 END
                                                              AS activity_id,
       CASE category WHEN 'key_create' THEN 'Create' WHEN 'key_modify' THEN 'Update' WHEN 'key_destroy' THEN 'Delete'
            ELSE 'Other' END                                  AS activity_name,
       600300 + CASE category WHEN 'key_create' THEN 1 WHEN 'key_modify' THEN 3 WHEN 'key_destroy' THEN 4 ELSE 99 END
                                                              AS type_uid,
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
WHERE category <> 'auth';
