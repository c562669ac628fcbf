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

// What a new user needs before the first command is in the docs (issue 17
// item 12): the README names go.mod's Go version and what setup.sh builds;
// docs/cni.md covers Podman's backends, that pods reach node addresses
// without masquerading since item 2, and entering namespace "hosts" with
// nsenter.
func TestFirstHourDocs(t *testing.T) {
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	var goVersion string
	for line := range strings.Lines(read("../go.mod")) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			goVersion = v
		}
	}
	readme, cniDoc := read("../README.md"), read("../docs/cni.md")
	for doc, wants := range map[string][]string{
		readme: {"Go " + goVersion + " or newer", "scripts/setup.sh", "builds `cnitool` and the reference"},
		cniDoc: {`network_backend = "cni"`, "weft env --format podman", "netavark", "other nodes' addresses** without masquerading",
			"nsenter --net=", "`ip netns exec`", "remounts `/sys`"},
	} {
		for _, w := range wants {
			if !strings.Contains(doc, w) {
				t.Errorf("docs lack %q", w)
			}
		}
	}
}
