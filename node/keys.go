package node

// Cluster key rotation on the running node, through the control socket:
// `weft key add|use|remove` (docs/security.md, "Key rotation"). The data
// plane's keys live in the Sealed codec; a KeyHook (the gossip keyring)
// follows every change, so one secret keeps protecting both planes.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/encap"
)

// KeyHook is told of each key change after the data plane made it, with the
// cluster secret concerned; an error undoes the data plane's change. The
// gossip keyring is the one in weft.
type KeyHook interface {
	AddKey(secret []byte) error
	UseKey(secret []byte) error
	RemoveKey(secret []byte) error
}

// errInsecure answers key changes on a node running --insecure.
var errInsecure = errors.New("this node runs --insecure: it has no keys to change (restart it with --key-file)")

// SetKeyHook makes h follow key changes. Call it before Run.
func (n *Node) SetKeyHook(h KeyHook) { n.keyHook = h }

// handleKeys adds the key endpoints to the control socket.
func (n *Node) handleKeys(s api.Mux) {
	s.HandleFunc("POST /v1/keys", func(w http.ResponseWriter, r *http.Request) {
		var req api.KeyRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
			api.WriteError(w, http.StatusBadRequest, fmt.Errorf("bad request: %w", err))
			return
		}
		secret, err := encap.ParseKey(req.Key)
		if err != nil {
			api.WriteError(w, http.StatusBadRequest, err)
			return
		}
		n.keyChange(w, "added", func(s *encap.Sealed) (byte, error) {
			id, err := s.AddKey(secret)
			if err != nil {
				return 0, err
			}
			if err := n.hook(func(h KeyHook) error { return h.AddKey(secret) }); err != nil {
				s.RemoveKey(id)
				return 0, err
			}
			n.secrets[id] = secret
			return id, nil
		})
	})
	s.HandleFunc("POST /v1/keys/{id}/use", func(w http.ResponseWriter, r *http.Request) {
		n.keyChangeByID(w, r, "now sending with", func(s *encap.Sealed, id byte, secret []byte) error {
			_, old := s.KeyIDs()
			if err := s.SetPrimary(id); err != nil {
				return err
			}
			if err := n.hook(func(h KeyHook) error { return h.UseKey(secret) }); err != nil {
				s.SetPrimary(old)
				return err
			}
			return nil
		})
	})
	s.HandleFunc("DELETE /v1/keys/{id}", func(w http.ResponseWriter, r *http.Request) {
		n.keyChangeByID(w, r, "removed", func(s *encap.Sealed, id byte, secret []byte) error {
			if err := s.RemoveKey(id); err != nil {
				return err
			}
			if err := n.hook(func(h KeyHook) error { return h.RemoveKey(secret) }); err != nil {
				s.AddKey(secret)
				return err
			}
			delete(n.secrets, id)
			return nil
		})
	})
}

// keyChange runs one change under keyMu (changes are rare and must not
// interleave; secrets is only touched here), answers and logs it.
func (n *Node) keyChange(w http.ResponseWriter, what string, change func(*encap.Sealed) (byte, error)) {
	s, ok := n.codec.(*encap.Sealed)
	if !ok {
		api.WriteError(w, http.StatusConflict, errInsecure)
		return
	}
	n.keyMu.Lock()
	defer n.keyMu.Unlock()
	id, err := change(s)
	if err != nil {
		api.WriteError(w, http.StatusConflict, err)
		return
	}
	ids, primary := s.KeyIDs()
	held := make([]int, len(ids))
	for i, k := range ids {
		held[i] = int(k)
	}
	n.log.Info("cluster key "+what, "key_id", id, "keys", held, "sending_with", primary)
	api.WriteJSON(w, http.StatusOK, api.KeyAnswer{ID: int(id)})
}

// keyChangeByID is keyChange for a key named by the {id} in the path.
func (n *Node) keyChangeByID(w http.ResponseWriter, r *http.Request, what string, change func(s *encap.Sealed, id byte, secret []byte) error) {
	v, err := strconv.ParseUint(r.PathValue("id"), 10, 8)
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, fmt.Errorf("key id %q: want a number 0-255, as weft key list shows", r.PathValue("id")))
		return
	}
	id := byte(v)
	n.keyChange(w, what, func(s *encap.Sealed) (byte, error) {
		secret, ok := n.secrets[id]
		if !ok {
			return 0, fmt.Errorf("key %d is not held (see weft key list)", id)
		}
		return id, change(s, id, secret)
	})
}

// hook runs f on the key hook, if there is one.
func (n *Node) hook(f func(KeyHook) error) error {
	if n.keyHook == nil {
		return nil
	}
	return f(n.keyHook)
}

// HeldKeys returns the cluster secrets the node holds now, the one it sends
// with first, as Config.Keys takes them: a node built again from them (the
// agent does after leasing another subnet) keeps the key changes made at
// runtime. Nil for an --insecure node.
func (n *Node) HeldKeys() [][]byte {
	s, ok := n.codec.(*encap.Sealed)
	if !ok {
		return nil
	}
	n.keyMu.Lock()
	defer n.keyMu.Unlock()
	ids, primary := s.KeyIDs()
	keys := [][]byte{n.secrets[primary]}
	for _, id := range ids {
		if id != primary {
			keys = append(keys, n.secrets[id])
		}
	}
	return keys
}
