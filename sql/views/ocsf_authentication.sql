-- ocsf_authentication: every login, as an OCSF 1.x Authentication event (class 3002, category 3 Identity & Access Management), flattened to columns.
-- Filled: class_uid 3002, class_name 'Authentication', category_uid 3, activity_id 1 'Logon' (a login is an `auth`
-- event of the catalog), type_uid class_uid * 100 + activity_id, status_id 1 'Success' / 2 'Failure' / 0 'Unknown' from outcome,
-- status_detail the vendor's status text, severity_id 1 (Informational), time, actor_user_name (actor_id),
-- src_endpoint_ip (client_ip), device_uid (hsm_id), api_operation (the vendor's action), resource_uid (ouid,
-- usually null for a login), metadata_uid (trace_id), metadata_product_vendor_name and metadata_product_name from
-- vendor; tenant_id and day kept so filters on them prune partitions.
CREATE VIEW ocsf_authentication AS
SELECT 3002                                                   AS class_uid,
       'Authentication'                                       AS class_name,
       3                                                      AS category_uid,
       1                                                      AS activity_id,
       'Logon'                                                AS activity_name,
       300201                                                 AS type_uid,
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
WHERE category = 'auth';
