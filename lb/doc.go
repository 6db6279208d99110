// Package lb renders the configuration of the layer-4 load balancer that
// fronts the kube-apiservers of an HA control plane, as nginx (stream module)
// or haproxy configuration, and reads back what haadm wrote for status
// reports.
//
// Everything here is pure: no file, network or process access, so the exact
// bytes that would be written can be shown in a dry run and pinned by golden
// tests.
package lb
