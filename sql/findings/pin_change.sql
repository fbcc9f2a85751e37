-- kind: pin_change
-- report: privileged
-- rule: a PIN or password set or initialized, a user added or removed, a quorum changed (DPoD LUNA_SET_PIN, LUNA_INIT_PIN, Delete User; CloudHSM CN_CHANGE_PSWD, CN_CREATE_USER, CN_DELETE_USER…; Azure role assignments, Cloud KMS SetIamPolicy, Vault policies and auth methods) (low; medium when it adds a crypto officer or appliance user, removes a user, changes a quorum or grants access (a role, an IAM policy, a Vault policy or auth method), or the hour is one the tenant never works; an actor new to the tenant is new_actor's finding)
WITH known AS (SELECT DISTINCT tenant_id, actor_id FROM events_baseline)
SELECT p.tenant_id, p.time, p.actor_id, p.client_ip, p.ouid, p.action, p.outcome, p.role, p.part_id,
       c.description AS what,
       p.action IN ('CN_CREATE_CO', 'CN_CREATE_APPLIANCE_USER', 'CN_DELETE_USER', 'CN_SET_M_VALUE', 'Delete User',
                    'RoleAssignmentCreate', 'RoleDefinitionCreate', 'SetIamPolicy',
                    'update sys/policies', 'update sys/auth') AS privilege_change,
       k.actor_id IS NULL AS new_actor, p.off_hours, p.hours_set, p.local_time,
       coalesce(th.history_days, 0) AS history_days
FROM period_clock p
JOIN action_catalog c ON c.vendor = p.vendor AND c.action = p.action
LEFT JOIN known k ON k.tenant_id = p.tenant_id AND k.actor_id = p.actor_id
LEFT JOIN tenant_history th ON th.tenant_id = p.tenant_id
WHERE c.category = 'user_admin'
ORDER BY p.tenant_id, p.time
