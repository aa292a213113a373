//go:build tools

// Package tools pins etcd (the server's main package) and etcdctl, built by
// scripts/control-plane.sh.
package tools

import (
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/server/v3"
)
