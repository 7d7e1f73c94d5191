-- Issue 14 item 5: a tenant's named agents besides its default agent (`agent`), as a JSON
-- object of name → AgentSpec (the Tenant CR's `spec.agents`; the plan bounds how many).
ALTER TABLE tenants ADD COLUMN agents TEXT NOT NULL DEFAULT '{}';
