package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
)

// Client talks to one node's control socket. Safe for concurrent use.
type Client struct {
	runDir, sock string
	hc           *http.Client
}

// NewClient returns a client for the node running with --run-dir runDir.
func NewClient(runDir string) *Client {
	return NewSocketClient(filepath.Join(runDir, SocketFile))
}

// NewSocketClient returns a client for the control socket at path.
func NewSocketClient(path string) *Client {
	return &Client{runDir: filepath.Dir(path), sock: path, hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true, // short-lived CLIs and plugins; nothing to reuse
	}}}
}

// Status asks the node for its status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	if err := c.Call(ctx, http.MethodGet, "/v1/status", nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Call sends a request with in as its JSON body (if not nil) and decodes the
// JSON answer into out (if not nil). An answer other than 2xx is an error
// carrying the node's message.
func (c *Client) Call(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.do(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode the answer of %s: %w", c.sock, err)
	}
	return nil
}

// Stream opens a streaming GET of path and returns the body; the caller
// closes it (or ends ctx) to stop.
func (c *Client) Stream(ctx context.Context, path string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// do sends a request and returns a 2xx answer; any other answer is an error
// with the node's message.
func (c *Client) do(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://weft"+path, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("no weft node is running with --run-dir %s (%s: %w)", c.runDir, c.sock, err)
		}
		return nil, fmt.Errorf("ask the node at %s: %w", c.sock, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var e struct{ Error string }
		if json.NewDecoder(resp.Body).Decode(&e) == nil && e.Error != "" {
			return nil, errors.New(e.Error)
		}
		return nil, fmt.Errorf("node at %s answered %s", c.sock, resp.Status)
	}
	return resp, nil
}

// AddKey makes the node accept the cluster key secret and returns its id.
func (c *Client) AddKey(ctx context.Context, secret string) (int, error) {
	var ans KeyAnswer
	err := c.Call(ctx, http.MethodPost, "/v1/keys", KeyRequest{Key: secret}, &ans)
	return ans.ID, err
}

// UseKey makes the node send with the key id it holds.
func (c *Client) UseKey(ctx context.Context, id string) (int, error) {
	var ans KeyAnswer
	err := c.Call(ctx, http.MethodPost, "/v1/keys/"+url.PathEscape(id)+"/use", nil, &ans)
	return ans.ID, err
}

// RemoveKey makes the node stop accepting key id.
func (c *Client) RemoveKey(ctx context.Context, id string) (int, error) {
	var ans KeyAnswer
	err := c.Call(ctx, http.MethodDelete, "/v1/keys/"+url.PathEscape(id), nil, &ans)
	return ans.ID, err
}

// Leases lists the cluster's subnet leases as the node knows them.
func (c *Client) Leases(ctx context.Context) ([]Lease, error) {
	var ls []Lease
	err := c.Call(ctx, http.MethodGet, "/v1/leases", nil, &ls)
	return ls, err
}

// ReleaseLease frees the lease of the gone node name.
func (c *Client) ReleaseLease(ctx context.Context, name string) error {
	return c.Call(ctx, http.MethodPost, "/v1/leases/"+url.PathEscape(name)+"/release", nil, nil)
}

// Trace streams the events f selects, one JSON TraceEvent a line; the
// caller closes the stream (or ends ctx) to stop.
func (c *Client) Trace(ctx context.Context, f TraceFilter) (io.ReadCloser, error) {
	return c.Stream(ctx, "/v1/trace?"+f.Query().Encode())
}
