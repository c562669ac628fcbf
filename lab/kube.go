package lab

// A real Kubernetes control plane on a lab host, for weft's --kube mode:
// Debian's etcd, and kube-apiserver and kube-controller-manager as
// scripts/setup.sh builds them from k8s.io/kubernetes. The controller
// manager runs only the nodeipam controller, which gives every Node created
// through the API a spec.podCIDR out of the cluster CIDR, as kubeadm
// clusters do. Clients authenticate with bearer tokens from a static token
// file: an admin in system:masters, and weft's service account
// (weft-system/weft), whose rights come only from the RBAC that
// deploy/kubernetes/weft.yaml grants it. The package links no client-go.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// K8sToolsEnv overrides K8sToolsDir.
const K8sToolsEnv = "WEFT_K8S_TOOLS"

// K8sToolsDir is where scripts/setup.sh builds kube-apiserver,
// kube-controller-manager and kubectl (bin/): $WEFT_K8S_TOOLS, default
// /opt/weft-test/k8s.
func K8sToolsDir() string {
	if d := os.Getenv(K8sToolsEnv); d != "" {
		return d
	}
	return "/opt/weft-test/k8s"
}

// K8sTool returns the path of one of the built Kubernetes programs, or an
// error naming what builds it.
func K8sTool(name string) (string, error) {
	p := filepath.Join(K8sToolsDir(), "bin", name)
	if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%w: %s (scripts/setup.sh builds it)", ErrMissingTool, p)
	}
	return p, nil
}

// RequireKube checks for everything StartControlPlane runs.
func RequireKube() error {
	var errs []error
	for _, t := range []string{"kube-apiserver", "kube-controller-manager", "kubectl"} {
		if _, err := K8sTool(t); err != nil {
			errs = append(errs, err)
		}
	}
	if err := Require("etcd"); err != nil {
		errs = append(errs, fmt.Errorf("%w (Debian package etcd-server; scripts/setup.sh installs it)", err))
	}
	return errors.Join(errs...)
}

// ControlPlaneConfig describes a control plane.
type ControlPlaneConfig struct {
	// Dir holds its state: etcd's data, certificates, kubeconfigs. Required.
	Dir string
	// ClusterCIDR is kube-controller-manager's --cluster-cidr, from which
	// Nodes get podCIDRs of NodeCIDRMaskSize bits. Default 10.244.0.0/16
	// and 24.
	ClusterCIDR      netip.Prefix
	NodeCIDRMaskSize int
	// ClusterCIDR6, if set, makes the cluster dual-stack: a second
	// --cluster-cidr, from which Nodes get a second podCIDR of
	// NodeCIDRMaskSize6 bits (default 64).
	ClusterCIDR6      netip.Prefix
	NodeCIDRMaskSize6 int
}

// ControlPlane is etcd, kube-apiserver and kube-controller-manager on one
// lab host.
type ControlPlane struct {
	Host *Host
	URL  string // the API server, https://<host address>:6443
	// AdminKubeconfig is a kubeconfig for a cluster admin (system:masters);
	// WeftKubeconfig one for weft's service account, weft-system/weft.
	// Both skip verifying the API server's self-signed certificate.
	AdminKubeconfig, WeftKubeconfig string
	// AdminToken authenticates as the admin.
	AdminToken string

	procs []*Proc // etcd first
}

// StartControlPlane starts a control plane on h and waits until the API
// server is ready. On error it stops what it started.
func (l *Lab) StartControlPlane(ctx context.Context, h *Host, cfg ControlPlaneConfig) (_ *ControlPlane, err error) {
	if err := RequireKube(); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if !cfg.ClusterCIDR.IsValid() {
		cfg.ClusterCIDR = netip.MustParsePrefix("10.244.0.0/16")
	}
	if cfg.NodeCIDRMaskSize == 0 {
		cfg.NodeCIDRMaskSize = 24
	}
	if cfg.NodeCIDRMaskSize6 == 0 {
		cfg.NodeCIDRMaskSize6 = 64
	}
	// nodeipam refuses --node-cidr-mask-size on a dual-stack cluster.
	cidrs := []string{"--cluster-cidr", cfg.ClusterCIDR.String(), "--node-cidr-mask-size", fmt.Sprint(cfg.NodeCIDRMaskSize)}
	if cfg.ClusterCIDR6.IsValid() {
		cidrs = []string{"--cluster-cidr", cfg.ClusterCIDR.String() + "," + cfg.ClusterCIDR6.String(),
			"--node-cidr-mask-size-ipv4", fmt.Sprint(cfg.NodeCIDRMaskSize), "--node-cidr-mask-size-ipv6", fmt.Sprint(cfg.NodeCIDRMaskSize6)}
	}
	dir := cfg.Dir
	for _, d := range []string{"etcd", "certs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	cp := &ControlPlane{Host: h, URL: fmt.Sprintf("https://%s", netip.AddrPortFrom(h.Addr, 6443))}
	defer func() {
		if err != nil {
			cp.Stop()
		}
	}()
	files, err := cp.writeFiles(dir)
	if err != nil {
		return nil, err
	}
	bin := func(name string) string { p, _ := K8sTool(name); return p }
	etcd, err := h.Start(context.Background(), "etcd", "--name", "lab", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
		"--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", "lab=http://127.0.0.1:2380", "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	cp.procs = append(cp.procs, etcd)
	api, err := h.Start(context.Background(), bin("kube-apiserver"),
		"--etcd-servers", "http://127.0.0.1:2379",
		"--advertise-address", h.Addr.String(), "--secure-port", "6443",
		"--cert-dir", filepath.Join(dir, "certs"), // a self-signed serving certificate
		"--token-auth-file", files.tokens, "--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", files.saKey, "--service-account-signing-key-file", files.saKey,
		"--service-cluster-ip-range", "10.96.0.0/16",
		"--allow-privileged=true", // as kubeadm clusters: weft's DaemonSet is privileged
		"--enable-priority-and-fairness=false")
	if err != nil {
		return nil, err
	}
	cp.procs = append(cp.procs, api)
	if err := cp.waitReady(ctx, api); err != nil {
		return nil, err
	}
	kcm, err := h.Start(context.Background(), bin("kube-controller-manager"), append(append([]string{
		"--kubeconfig", cp.AdminKubeconfig, "--controllers", "nodeipam", "--allocate-node-cidrs"}, cidrs...),
		"--service-cluster-ip-range", "10.96.0.0/16",
		"--leader-elect=false", "--secure-port=0")...)
	if err != nil {
		return nil, err
	}
	cp.procs = append(cp.procs, kcm)
	return cp, nil
}

type controlPlaneFiles struct{ tokens, saKey string }

// writeFiles writes the token file, the service-account signing key and
// the two kubeconfigs.
func (cp *ControlPlane) writeFiles(dir string) (controlPlaneFiles, error) {
	f := controlPlaneFiles{tokens: filepath.Join(dir, "tokens.csv"), saKey: filepath.Join(dir, "sa.key")}
	cp.AdminToken = randomToken()
	weftToken := randomToken()
	tokens := fmt.Sprintf("%s,admin,admin,\"system:masters\"\n", cp.AdminToken) +
		fmt.Sprintf("%s,system:serviceaccount:weft-system:weft,weft,\"system:serviceaccounts,system:serviceaccounts:weft-system\"\n", weftToken)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return f, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return f, err
	}
	cp.AdminKubeconfig, cp.WeftKubeconfig = filepath.Join(dir, "admin.kubeconfig"), filepath.Join(dir, "weft.kubeconfig")
	for path, content := range map[string][]byte{
		f.tokens:           []byte(tokens),
		f.saKey:            pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		cp.AdminKubeconfig: kubeconfig(cp.URL, "admin", cp.AdminToken),
		cp.WeftKubeconfig:  kubeconfig(cp.URL, "weft", weftToken),
	} {
		if err := os.WriteFile(path, content, 0o600); err != nil {
			return f, err
		}
	}
	return f, nil
}

func randomToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func kubeconfig(server, user, token string) []byte {
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: %s
  user:
    token: %s
contexts:
- name: lab
  context:
    cluster: lab
    user: %s
current-context: lab
`, server, user, token, user)
}

// waitReady waits until the API server answers /readyz with 200, or its
// process exits.
func (cp *ControlPlane) waitReady(ctx context.Context, api *Proc) error {
	client := cp.HTTPClient()
	defer client.CloseIdleConnections()
	return WaitFor(ctx, time.Minute, "kube-apiserver ready", func() error {
		select {
		case <-api.Done():
			return fmt.Errorf("kube-apiserver exited: %v\n%s", api.Wait(), api.Output())
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, cp.URL+"/readyz", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+cp.AdminToken)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s", resp.Status)
		}
		return nil
	})
}

// Dial connects from inside the control plane's host: the lab's addresses
// exist only in its namespaces. Clients of the API server (client-go's
// rest.Config.Dial) use it.
func (cp *ControlPlane) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return InNetns(cp.Host, func() (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	})
}

// HTTPClient is an HTTP client that reaches the API server through Dial,
// without verifying its self-signed certificate.
func (cp *ControlPlane) HTTPClient() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext:     cp.Dial,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
}

// Output returns the output of the control plane's programs, for a failed
// test's log.
func (cp *ControlPlane) Output() string {
	var s string
	for _, p := range cp.procs {
		s += fmt.Sprintf("--- %s:\n%s\n", filepath.Base(p.Name), p.Output())
	}
	return s
}

// Stop stops the control plane, the controller manager first and etcd
// last. It returns the first error from a program that did not stop on
// SIGTERM.
func (cp *ControlPlane) Stop() error {
	var errs []error
	for i := len(cp.procs) - 1; i >= 0; i-- {
		if err := cp.procs[i].Stop(syscall.SIGTERM, 10*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	cp.procs = nil
	return errors.Join(errs...)
}
