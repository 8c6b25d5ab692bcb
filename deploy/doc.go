// Package deploy holds the ways tipreaper is deployed besides `go run`: the Kubernetes manifests in
// kubernetes/ and the systemd unit in systemd/ (the Dockerfile lives at the repository root, where
// `docker build .` finds it). It has no Go code of its own: its tests check every artifact against the
// code it deploys, so that a renamed command, flag, endpoint or config key fails a test here instead of
// a deployment.
//
//	Dockerfile            ──▶ dockerfile_test.go  builds the same static binary with the same flags, runs it
//	kubernetes/*.yaml     ──▶ kubernetes_test.go  commands, probes, ports, ${VAR}s against the code
//	systemd/*.service     ──▶ systemd_test.go     command, hardening, stop timeout; systemd-analyze verify
package deploy
