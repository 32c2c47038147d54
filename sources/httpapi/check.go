package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// openForCheck opens the streams' clients for one command; done ends their idle
// connections.
func openForCheck(p connector.SourceParams) (*Config, []*stream, func(), error) {
	cfg, err := connector.SourceConfig[Config](p)
	if err != nil {
		return nil, nil, nil, err
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	streams, err := openStreams(cfg, &http.Client{Transport: tr}, log)
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, streams, tr.CloseIdleConnections, nil
}

// firstPage asks for a stream's first page, as the first round would.
func firstPage(ctx context.Context, str *stream) (*Page, error) {
	v := Vars{}
	if str.cursor != nil {
		v.Cursor = str.cursor.Start
	}
	page, err := str.client.Pages(ctx, v).Next(ctx)
	if errors.Is(err, io.EOF) {
		return &Page{}, nil
	}
	return page, err
}

// Check makes one request per stream and says what came back: the status, how many
// records the first page holds and the first record's fields.
func (Kind) Check(ctx context.Context, p connector.SourceParams) []connector.CheckResult {
	_, streams, done, err := openForCheck(p)
	if err != nil {
		return []connector.CheckResult{{Name: "http: config", Detail: err.Error()}}
	}
	defer done()
	var out []connector.CheckResult
	for _, str := range streams {
		name := "http: stream " + str.cfg.Name
		page, err := firstPage(ctx, str)
		if err != nil {
			out = append(out, connector.CheckResult{Name: name, Detail: err.Error(),
				Fix: "check the stream's url, auth and records settings against the API's answer above"})
			continue
		}
		detail := fmt.Sprintf("HTTP %d from %s: %d records on the first page", page.Status, page.URL, len(page.Records))
		if len(page.Records) > 0 {
			fields := make([]string, 0, len(page.Records[0]))
			for f := range page.Records[0] {
				fields = append(fields, f)
			}
			slices.Sort(fields)
			detail += "; the first has fields " + strings.Join(fields, ", ")
			if miss := missingFields(page.Records[0], str); len(miss) > 0 {
				out = append(out, connector.CheckResult{Name: name, Detail: detail + "; it lacks " + strings.Join(miss, ", "),
					Fix: "set primary_key and cursor.field to fields the records have"})
				continue
			}
		}
		out = append(out, connector.CheckResult{Name: name, OK: true, Detail: detail})
	}
	return out
}

// missingFields lists the key and cursor fields rec lacks.
func missingFields(rec map[string]any, str *stream) []string {
	var miss []string
	for _, f := range str.cfg.PrimaryKey {
		if _, ok := rec[f]; !ok {
			miss = append(miss, "primary_key field "+f)
		}
	}
	if str.cursor != nil {
		if _, ok := rec[str.cursor.Field]; !ok {
			miss = append(miss, "cursor field "+str.cursor.Field)
		}
	}
	return miss
}

// Discover infers each stream's schema from its first page (and its declared
// columns), as the first round would start it.
func (Kind) Discover(ctx context.Context, p connector.SourceParams) ([]*record.Schema, error) {
	cfg, streams, done, err := openForCheck(p)
	if err != nil {
		return nil, err
	}
	defer done()
	var out []*record.Schema
	for _, str := range streams {
		t, err := str.tracker(cfg.Namespace, nil)
		if err != nil {
			return nil, err
		}
		page, err := firstPage(ctx, str)
		if err != nil {
			return nil, err
		}
		for i, rec := range page.Records {
			if _, err := t.Observe(rec); err != nil {
				return nil, fmt.Errorf("http: stream %s, %s record %d: %w", str.cfg.Name, page.URL, i, err)
			}
		}
		out = append(out, t.Schema())
	}
	return out, nil
}
