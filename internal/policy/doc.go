// Package policy reads the reaper's config file and decides, customer by
// customer, what a pass may do: nothing, mark, wait, or delete.
//
// Data flows one way:
//
//	file bytes ──Parse──▶ yaml.Node tree ──schema walk──▶ *Config ──Decide──▶ Decision
//	                         │                 │
//	                         │                 ├─ ${VAR} expanded in scalar values only
//	                         │                 └─ every problem collected as FILE:LINE: field: message
//	                         └─ one document only; empty file is an error
//
// Parse walks the YAML node tree with the schema in hand rather than
// decoding into structs, so that every problem (unknown keys at any depth,
// bad regexps, GUIDs, durations, URLs, dangling account references) carries
// its line and field path, and all of them are reported at once, sorted by
// line, as Problems. ${VAR} and ${VAR:-default} are expanded after parsing,
// so an environment value can never change the document's structure; $$ is
// a literal $. Credentials are held as Secret, which redacts itself in every
// printing and encoding path; no problem message quotes a secret.
//
// Decide is pure and allocation-free for customers no policy selects: it runs
// for every customer of every account on every pass. Protections (the global
// keep, the keep of any policy of the account, and reaper_keep rows passed in
// as StoreKeep) beat every selection; a customer of unknown age is never
// expired by a policy that has an age requirement.
//
// I/O: Load reads the config file (a regular file of at most 1 MiB); Parse
// reads the secret, certificate and key files the config names (*_file keys,
// at most 64 KiB each), so a config that validates can sign in.
package policy
