//go:build tools

// Package tools pins Helm, built by scripts/control-plane.sh.
package tools

import _ "helm.sh/helm/v4/cmd/helm"
