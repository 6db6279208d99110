// Package certs mints what kubeadm would write for a control-plane node
// (serving and client certificates, kubeconfigs) so haadm can add masters to
// a cluster that `kubeadm join --control-plane` refuses to extend.
//
// Everything is pure: PEM bytes and cluster facts in, PEM bytes out. Time is
// passed in by the caller and randomness comes from crypto/rand, so phases
// stay testable and a dry run shows exactly what would be written.
//
// The specs follow kubeadm v1.36 (cmd/kubeadm/app/phases/certs and
// util/pkiutil); the tests compare them with certificates written by a real
// kubeadm v1.36.3 (testdata/v1.36/kubeadm-pki).
package certs
