// Package testkit is the scaffolding haadm's tests share: the lab captured
// from a real kubeadm cluster (testdata/), a fake network that routes the
// lab's addresses to test listeners, a kubeadm-like test PKI, and an HTTPS
// server that answers like kube-apiserver.
//
// It imports nothing of haadm but certs, so that any package's tests can
// use it without an import cycle. Helpers that take a testing.TB fail the
// test on error; the few that return an error are for code that runs
// outside one test (a fixture built once per test binary in a sync.Once).
//
// How the hand-made helpers of earlier tests map onto it:
//
//	&fakeNet{...}, newFakeNet()        NewNet()
//	fakeNet.route(addr, to)            Net.Route(addr, to)
//	fakeNet.routeFrom(node, addr, to)  Net.RouteFrom(node, addr, to)
//	fakeNet.dialer(node)               Net.Dialer(node)
//	fakeNet.dial                       Net.Dial (from no node in particular)
//	fakeNet.kill(ip)                   Net.Kill(ip)
//	net.Listen + fakeNet.route         Net.Listen(t, addr)
//	serveTLS(t, fn, addr, cert, h)     Net.ServeTLS(t, addr, cert, h)
//	tls.NewListener + httptest         ServeTLS(t, cfg, h), then Route or RouteFrom
//	fakeAPIServer, /readyz handlers    APIServer
//	newTestCA(cn)                      NewCA(cn)
//	issueLeaf(ca, spec, notBefore)     IssueLeaf(ca, spec, notBefore)
//	serving(t, ca, spec, notAfter)     ServingCert(t, ca, spec, notAfter)
//	testCA(t) (kubeadm-pki/ca.*)      KubeadmCA(t)
//	os.ReadFile("../testdata/" + rel)  Testdata(t, rel), ReadTestdata(rel)
//	readYAML(t, rel, into)             DecodeYAML(t, Lab+"/"+rel, into)
//	nodes.yaml, configmaps/*.yaml      LabNodes(t), LabConfigMap(t, name)
//	walking testdata/v1.36/<node>      LabFiles(node)
//	shaolinIP, emeiIP, wudangIP        ShaolinIP, EmeiIP, WudangIP, LabIPs()
package testkit
