package cni

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
)

// The shipped configs are what the docs say and weft-cni takes: the example
// conflist, and the same conflist inside the DaemonSet manifest.
func TestDeployConfigs(t *testing.T) {
	example, err := os.ReadFile("../deploy/cni/10-weft.conflist")
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := os.ReadFile("../deploy/kubernetes/weft.yaml")
	if err != nil {
		t.Fatal(err)
	}
	embedded := yamlBlock(t, string(manifest), "cni-conf.json: |")
	jsonEqual(t, []byte(embedded), string(example))

	list, err := libcni.ConfListFromBytes(example)
	if err != nil {
		t.Fatal(err)
	}
	if list.Plugins[0].Network.Type != "weft-cni" {
		t.Fatalf("first plugin %q", list.Plugins[0].Network.Type)
	}
	// libcni adds name and cniVersion to each plugin's config.
	var plugin map[string]any
	json.Unmarshal(list.Plugins[0].Bytes, &plugin)
	plugin["name"], plugin["cniVersion"] = list.Name, list.CNIVersion
	b, _ := json.Marshal(plugin)
	conf, err := ParseNetConf(b)
	if err != nil {
		t.Fatal(err)
	}
	if conf.SubnetFile != DefaultSubnetFile || conf.DataDir != DefaultDataDir {
		t.Fatalf("the example should spell out the defaults: %+v", conf)
	}
	d, err := conf.buildDelegate(testSubnet(t))
	if err != nil {
		t.Fatal(err)
	}
	if !d.IsDefaultGateway || d.Type != "bridge" || d.IPAM.Type != "host-local" {
		t.Fatalf("delegate %+v", d)
	}
	for _, want := range []string{"defaultMode: 0600", "--key-file /etc/weft/key/cluster.key", "mountPath: /etc/weft/key",
		"weft up --kube", "verbs: [\"get\", \"list\", \"watch\", \"patch\"]", "hostNetwork: true", "privileged: true", "path: /run/weft\n"} {
		if !strings.Contains(string(manifest), want) {
			t.Errorf("manifest lacks %q", want)
		}
	}
}

// yamlBlock returns the literal block scalar after the line ending in key.
func yamlBlock(t *testing.T, doc, key string) string {
	t.Helper()
	lines := strings.Split(doc, "\n")
	for i, l := range lines {
		if !strings.HasSuffix(strings.TrimSpace(l), key) {
			continue
		}
		indent := -1
		var out []string
		for _, b := range lines[i+1:] {
			if strings.TrimSpace(b) == "" {
				out = append(out, "")
				continue
			}
			n := len(b) - len(strings.TrimLeft(b, " "))
			if indent < 0 {
				indent = n
			}
			if n < indent {
				break
			}
			out = append(out, b[indent:])
		}
		return strings.Join(out, "\n")
	}
	t.Fatalf("no %q in the manifest", key)
	return ""
}
