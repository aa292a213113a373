//go:build tools

// Package tools pins the Kubernetes programs scripts/control-plane.sh builds: this module's
// go.mod requires k8s.io/kubernetes and replaces each of its staging modules (which its own
// go.mod points at ./staging) with the published release of the same version.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
