package agent

import "github.com/weftnet/weft/masq"

// installMasq installs the egress masquerade of --ip-masq (replacing what a
// crashed agent left) and returns what removes it on a clean stop.
func installMasq(cfg *Config) (remove func(), err error) {
	if !cfg.Node.IPMasq {
		return func() {}, nil
	}
	r, err := masq.Install(cfg.Node.Network)
	if err != nil {
		return nil, err
	}
	cfg.Log.Info("egress masqueraded", "network", cfg.Node.Network, "table", masq.Table)
	return func() {
		if err := r.Remove(); err != nil {
			cfg.Log.Warn("remove the egress masquerade", "err", err)
		}
	}, nil
}
