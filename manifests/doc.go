// Package manifests derives a new control-plane node's static-pod manifests
// (/etc/kubernetes/manifests/*.yaml) from the first master's.
//
// The transforms are pure and work on typed corev1.Pod values: kubeadm writes
// these files by marshalling a corev1.Pod, so decoding into the same type and
// marshalling back reproduces the file byte for byte, and only the fields a
// transform sets change. Flags live in spec.containers[0].command as
// --name=value entries; transforms keep their order, replace values in place
// and append missing flags at the end.
//
// Every transform is idempotent: applied to its own output for the same node
// it returns identical bytes, so re-running haadm does not restart pods.
package manifests
