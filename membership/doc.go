// Package membership lets weft nodes find each other and lease their subnets
// by gossip (hashicorp/memberlist), with no central store.
package membership
