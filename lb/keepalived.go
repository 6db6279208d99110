package lb

import (
	"bytes"
	"fmt"
	"net"
	"strings"
)

// KeepalivedConf and KeepalivedCheck are the files haadm owns on a master
// in the vip mode.
const (
	KeepalivedConf  = "/etc/keepalived/keepalived.conf"
	KeepalivedCheck = "/etc/keepalived/haadm-check-proxy.sh"
)

// VRRPAdvertInterval is how often the holder of the address says so.
// VRRPv3 counts in centiseconds; a backup takes over after three missed
// adverts plus its skew, about 1 s here: the address moves within the 2 s
// an operator's clients can bear, and a 2-core machine under a starting
// control plane still keeps 300 ms.
const VRRPAdvertInterval = "0.3"

// VRRP is one master's share of the virtual address.
type VRRP struct {
	// Node names the master, for comments and keepalived's router_id.
	Node string
	// VIP is the virtual IPv4 address; PrefixLen its subnet's length
	// (the masters' own), Interface the device that holds the node's
	// address on that subnet.
	VIP       string
	PrefixLen int
	Interface string
	// SourceIP is this master's address; Peers the other masters':
	// adverts go unicast, since clouds and many switches drop VRRP's
	// multicast.
	SourceIP string
	Peers    []string
	// Priority decides who takes the address first (1-254); RouterID is
	// the VRRP group (1-255), the same on every master.
	Priority int
	RouterID int
	// Engine is the proxy whose process the check watches.
	Engine Engine
}

// RouterIDFor derives the VRRP group from the address, so that two
// clusters' virtual addresses on one subnet do not share a group.
func RouterIDFor(vip string) int {
	ip := net.ParseIP(vip).To4()
	if ip == nil || ip[3] == 0 {
		return 51 // keepalived's own example value
	}
	return int(ip[3])
}

func (v VRRP) validate() error {
	ip := net.ParseIP(v.VIP)
	if ip == nil || ip.To4() == nil {
		return fmt.Errorf("virtual address %q: want an IPv4 address", v.VIP)
	}
	if v.PrefixLen < 1 || v.PrefixLen > 32 {
		return fmt.Errorf("prefix length %d: want 1-32", v.PrefixLen)
	}
	if v.Interface == "" || strings.ContainsAny(v.Interface, " \t\n{}\"") {
		return fmt.Errorf("interface %q: want a device name", v.Interface)
	}
	for _, a := range append([]string{v.SourceIP}, v.Peers...) {
		if net.ParseIP(a) == nil {
			return fmt.Errorf("address %q: want an IP address", a)
		}
		if a == v.VIP {
			return fmt.Errorf("virtual address %s is a master's own address", v.VIP)
		}
	}
	if v.Priority < 1 || v.Priority > 254 {
		return fmt.Errorf("priority %d: want 1-254", v.Priority)
	}
	if v.RouterID < 1 || v.RouterID > 255 {
		return fmt.Errorf("router id %d: want 1-255", v.RouterID)
	}
	return nil
}

// RenderKeepalived returns a master's whole keepalived.conf.
//
// Every master starts as BACKUP with nopreempt: the address stays where it
// is when a master with a higher priority comes back, because every move
// breaks the connections it carries.
func RenderKeepalived(v VRRP) ([]byte, error) {
	if err := v.validate(); err != nil {
		return nil, fmt.Errorf("keepalived config: %w", err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s: the Kubernetes API's virtual address %s.\n", Managed, v.VIP)
	fmt.Fprintf(&b, "# haadm rewrites this file; local changes will be lost.\n\n")
	fmt.Fprintf(&b, "global_defs {\n")
	fmt.Fprintf(&b, "    router_id haadm_%s\n", strings.ReplaceAll(v.Node, ".", "_"))
	fmt.Fprintf(&b, "    # The check below is haadm's own root-owned script.\n")
	fmt.Fprintf(&b, "    enable_script_security\n")
	fmt.Fprintf(&b, "    script_user root\n")
	fmt.Fprintf(&b, "}\n\n")
	fmt.Fprintf(&b, "# A master whose proxy is down gives the address up.\n")
	fmt.Fprintf(&b, "vrrp_script haadm_proxy {\n")
	fmt.Fprintf(&b, "    script %q\n", KeepalivedCheck)
	fmt.Fprintf(&b, "    interval 1\n")
	fmt.Fprintf(&b, "    timeout 1\n")
	fmt.Fprintf(&b, "    fall 2\n")
	fmt.Fprintf(&b, "    rise 2\n")
	fmt.Fprintf(&b, "}\n\n")
	fmt.Fprintf(&b, "vrrp_instance haadm_apiserver {\n")
	fmt.Fprintf(&b, "    state BACKUP\n")
	fmt.Fprintf(&b, "    nopreempt\n")
	fmt.Fprintf(&b, "    interface %s\n", v.Interface)
	fmt.Fprintf(&b, "    virtual_router_id %d\n", v.RouterID)
	fmt.Fprintf(&b, "    priority %d\n", v.Priority)
	fmt.Fprintf(&b, "    version 3\n")
	fmt.Fprintf(&b, "    advert_int %s\n", VRRPAdvertInterval)
	fmt.Fprintf(&b, "    unicast_src_ip %s\n", v.SourceIP)
	fmt.Fprintf(&b, "    unicast_peer {\n")
	for _, p := range v.Peers {
		fmt.Fprintf(&b, "        %s\n", p)
	}
	fmt.Fprintf(&b, "    }\n")
	fmt.Fprintf(&b, "    virtual_ipaddress {\n")
	fmt.Fprintf(&b, "        %s/%d dev %s\n", v.VIP, v.PrefixLen, v.Interface)
	fmt.Fprintf(&b, "    }\n")
	fmt.Fprintf(&b, "    track_script {\n")
	fmt.Fprintf(&b, "        haadm_proxy\n")
	fmt.Fprintf(&b, "    }\n")
	fmt.Fprintf(&b, "}\n")
	return b.Bytes(), nil
}

// RenderKeepalivedCheck returns the check script: the proxy's master
// process is alive. keepalived's track_process would do, but it relies on
// the kernel's process events, which only the initial PID namespace gets.
func RenderKeepalivedCheck(e Engine) []byte {
	pidFile := defaultNginxPIDFile
	if e == EngineHAProxy {
		pidFile = defaultHAProxyPIDFile
	}
	return []byte(fmt.Sprintf("#!/bin/sh\n%s: keepalived gives the API's virtual address up when this fails.\npid=$(cat %s 2>/dev/null) && [ -n \"$pid\" ] && kill -0 \"$pid\"\n", Managed, pidFile))
}

// ParseKeepalivedVIP returns the virtual address of a keepalived.conf haadm
// wrote.
func ParseKeepalivedVIP(conf []byte) (string, error) {
	in := false
	for _, line := range strings.Split(string(conf), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "virtual_ipaddress" && f[1] == "{":
			in = true
		case in && len(f) > 0:
			ip, _, ok := strings.Cut(f[0], "/")
			if !ok || net.ParseIP(ip) == nil {
				return "", fmt.Errorf("keepalived config: virtual_ipaddress %q", f[0])
			}
			return ip, nil
		}
	}
	return "", fmt.Errorf("keepalived config: no virtual_ipaddress (not written by haadm?)")
}
