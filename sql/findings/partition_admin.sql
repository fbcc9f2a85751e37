-- kind: partition_admin
-- report: privileged
-- rule: every zeroize or initialization of a partition or HSM (DPoD LUNA_PARTITION_ZEROIZE, LUNA_PARTITION_INIT; CloudHSM CN_ZEROIZE, CN_INIT_TOKEN, CN_INIT_DONE; Azure Managed HSM SecurityDomainUpload, RestoreStart) (high; medium when it failed); any other HSM administration (CloudHSM's KEK, PEK, backup key, node id, closing sessions; a vault changed or deleted, a security domain downloaded, a full backup; a Cloud KMS key ring made; a Vault secrets engine, audit device or seal changed) (medium; low when it failed)
SELECT e.tenant_id, e.time, e.actor_id, e.client_ip, e.ouid, e.action, e.outcome, e.status,
       e.part_id, e.hsm_id, e.role, c.description AS what,
       e.action IN ('LUNA_PARTITION_ZEROIZE', 'CN_ZEROIZE') AS zeroize,
       e.action IN ('LUNA_PARTITION_INIT', 'CN_INIT_TOKEN', 'CN_INIT_DONE', 'SecurityDomainUpload', 'RestoreStart') AS init
FROM events e JOIN action_catalog c ON c.vendor = e.vendor AND c.action = e.action
WHERE c.category = 'partition_admin'
ORDER BY e.tenant_id, e.time
