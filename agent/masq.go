package agent

import "github.com/weftnet/weft/masq"

// installMasq installs the egress masquerade of --ip-masq for the
// overlay's networks, both of a dual-stack one (replacing what a crashed
// agent left), and returns what removes it on a clean stop.
func installMasq(cfg *Config) (remove func(), err error) {
	if !cfg.Node.IPMasq {
		return func() {}, nil
	}
	r, err := masq.Install(cfg.Node.Network, cfg.Node.Network6)
	if err != nil {
		return nil, err
	}
	cfg.Log.Info("egress masqueraded", "network", cfg.Node.Network, "network6", cfg.Node.Network6, "table", masq.Table)
	return func() {
		if err := r.Remove(); err != nil {
			cfg.Log.Warn("remove the egress masquerade", "err", err)
		}
	}, nil
}
