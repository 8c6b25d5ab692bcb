package policy

// The keys the decoder accepts at each level, in the order the example
// config and the schema list them. The schema agreement test compares these
// with config.schema.json.
var (
	topKeys      = []string{"schedule", "database", "state_dir", "token_key", "token_key_file", "http", "notify", "accounts", "limits", "keep", "policies"}
	databaseKeys = []string{"url"}
	httpKeys     = []string{"listen"}
	notifyKeys   = []string{"webhook_url", "quota_warn"}
	accountKeys  = []string{"name", "cloud", "partner_tenant_id", "client_id",
		"client_secret", "client_secret_file", "client_certificate_file", "client_key_file", "refresh_token", "refresh_token_file",
		"base_url", "authority", "activity_log"}
	limitKeys = []string{"concurrency", "requests_per_minute", "allow_above_documented_rate", "poll_interval", "poll_max",
		"cancel_timeout", "max_deletes_per_pass", "max_listed", "max_retry_wait", "plan_max_age", "drain_timeout"}
	keepKeys     = []string{"customer_ids", "domains", "company_names"}
	policyKeys   = []string{"name", "account", "select", "older_than", "grace", "max_selected_fraction", "keep"}
	selectorKeys = []string{"domain", "company_name", "customer_ids"}
)
