// Command http measures the http source: `connectd sync` of a local JSON API serving
// pages of 1,000 records, next to a bare net/http loop that fetches the same pages and
// only decodes their JSON (the physical limit of this machine for that API: the ratio
// is the cost of connectd's work: records, positions, Parquet). The API runs in a
// process of its own, serving pages it encoded before the clock started, so neither
// side pays for the server. Run it from the repository root:
//
//	go run ./bench/http -n 1000000
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	n := flag.Int("n", 1_000_000, "records the API serves")
	size := flag.Int("page", 1000, "records per page")
	bin := flag.String("bin", "", "connectd binary (default: build ./cmd/connectd)")
	serve := flag.String("serve", "", "internal: serve the API on this address")
	flag.Parse()
	if *serve != "" {
		runServer(*serve, *n, *size)
		return
	}
	if err := run(*n, *size, *bin); err != nil {
		log.Fatal(err)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05")+"  "+format+"\n", args...)
}

// runServer encodes every page once, then serves them: GET /items?page=N with a Link
// header to the next page, records in ascending updated_at.
func runServer(addr string, n, size int) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var pages [][]byte
	for first := 0; first < n; first += size {
		recs := make([]map[string]any, 0, size)
		for i := first; i < min(first+size, n); i++ {
			recs = append(recs, map[string]any{
				"id": i + 1, "name": "item " + strconv.Itoa(i+1), "amount": float64(i%100000) / 100,
				"updated_at": base.Add(time.Duration(i) * time.Second).Format(time.RFC3339),
				"active":     i%3 != 0, "tags": []string{"t" + strconv.Itoa(i%7), "x"},
				"customer": map[string]any{"id": i % 5000, "tier": "gold"},
			})
		}
		b, err := json.Marshal(map[string]any{"data": recs})
		if err != nil {
			log.Fatal(err)
		}
		pages = append(pages, b)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ready", ln.Addr())
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := strconv.Atoi(r.URL.Query().Get("page"))
		p = max(p, 1)
		if p < len(pages) {
			w.Header().Set("Link", fmt.Sprintf(`</items?page=%d>; rel="next"`, p+1))
		}
		w.Header().Set("Content-Type", "application/json")
		if p <= len(pages) {
			_, _ = w.Write(pages[p-1])
		} else {
			_, _ = w.Write([]byte(`{"data": []}`))
		}
	})}
	log.Fatal(srv.Serve(ln))
}

type usage struct {
	wall      time.Duration
	user, sys time.Duration
	maxRSSMiB float64
}

func (u usage) cpu() time.Duration { return u.user + u.sys }

func run(n, size int, bin string) error {
	tmp, err := os.MkdirTemp("", "connectd-bench-http-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if bin == "" {
		bin = filepath.Join(tmp, "connectd")
		logf("building connectd")
		if out, err := exec.Command("go", "build", "-o", bin, "./cmd/connectd").CombinedOutput(); err != nil {
			return fmt.Errorf("go build: %v\n%s", err, out)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logf("starting the API: %d records in pages of %d", n, size)
	api := exec.Command(self, "-serve", "127.0.0.1:0", "-n", strconv.Itoa(n), "-page", strconv.Itoa(size))
	out, err := api.StdoutPipe()
	if err != nil {
		return err
	}
	api.Stderr = os.Stderr
	if err := api.Start(); err != nil {
		return err
	}
	defer func() { _ = api.Process.Kill(); _ = api.Wait() }()
	var ready, addr string
	if _, err := fmt.Fscan(out, &ready, &addr); err != nil || ready != "ready" {
		return fmt.Errorf("the API did not start: %v", err)
	}
	url := "http://" + addr

	var base usage
	for run := 1; run <= 2; run++ {
		u, got, err := bareLoop(url)
		if err != nil {
			return err
		}
		if got != n {
			return fmt.Errorf("the bare loop read %d records, want %d", got, n)
		}
		logf("bare net/http + encoding/json, run %d: %s (%.0f records/s), CPU %s", run, u.wall.Round(time.Millisecond), float64(n)/u.wall.Seconds(), u.cpu().Round(time.Millisecond))
		if run == 1 || u.wall < base.wall {
			base = u
		}
	}

	cfg := filepath.Join(tmp, "connectd.yaml")
	yaml := fmt.Sprintf(`offsets: file://%s/offsets
connectors:
  bench:
    source:
      type: http
      namespace: bench
      base_url: %s
      rate: 100000
      streams:
        - name: items
          url: /items
          records: /data
          primary_key: [id]
          cursor: {field: updated_at, type: time}
          pagination: {type: link_header}
          flatten: 1
    destination:
      type: parquet
      url: file://%s/lake
      flush: {rows: 1000000, bytes: 256MiB, interval: 60s}
`, tmp, url, tmp)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		return err
	}
	logf("connectd sync")
	cmd := exec.CommandContext(context.Background(), bin, "sync", "-c", cfg)
	logPath := filepath.Join(tmp, "sync.log")
	lf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer lf.Close()
	cmd.Stdout, cmd.Stderr = lf, lf
	start := time.Now()
	if err := cmd.Run(); err != nil {
		tail, _ := os.ReadFile(logPath)
		return fmt.Errorf("connectd sync: %v\n%s", err, lastLines(string(tail), 20))
	}
	cu := usage{wall: time.Since(start)}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		cu.user = time.Duration(ru.Utime.Nano())
		cu.sys = time.Duration(ru.Stime.Nano())
		cu.maxRSSMiB = float64(ru.Maxrss) / 1024
	}
	logf("connectd sync: %s (%.0f records/s), CPU %s, peak RSS %.0f MiB", cu.wall.Round(time.Millisecond), float64(n)/cu.wall.Seconds(), cu.cpu().Round(time.Millisecond), cu.maxRSSMiB)

	perM := func(d time.Duration) float64 { return d.Seconds() / float64(n) * 1e6 }
	fmt.Printf("\nhttp source, %d records in pages of %d from a local API (its own process, pages encoded beforehand)\n\n", n, size)
	fmt.Printf("  %-34s %12s %14s %18s %10s\n", "", "wall", "records/s", "CPU-s per M recs", "ratio")
	fmt.Printf("  %-34s %12s %14.0f %18.2f %10s\n", "bare net/http + encoding/json", base.wall.Round(time.Millisecond), float64(n)/base.wall.Seconds(), perM(base.cpu()), "1.00")
	fmt.Printf("  %-34s %12s %14.0f %18.2f %10.2f\n", "connectd sync (http -> parquet)", cu.wall.Round(time.Millisecond), float64(n)/cu.wall.Seconds(), perM(cu.cpu()), base.wall.Seconds()/cu.wall.Seconds())
	fmt.Printf("\n  ratio: connectd's records/s over the bare loop's; connectd peak RSS %.0f MiB\n", cu.maxRSSMiB)
	return nil
}

// bareLoop fetches every page and decodes it as the source does (UseNumber into
// maps), nothing more; its CPU is this process's over the loop.
func bareLoop(url string) (usage, int, error) {
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	start := time.Now()
	client := &http.Client{}
	next := url + "/items?page=1"
	n := 0
	for next != "" {
		resp, err := client.Get(next)
		if err != nil {
			return usage{}, 0, err
		}
		dec := json.NewDecoder(resp.Body)
		dec.UseNumber()
		var body struct {
			Data []map[string]any `json:"data"`
		}
		err = dec.Decode(&body)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return usage{}, 0, err
		}
		n += len(body.Data)
		next = ""
		if l := resp.Header.Get("Link"); l != "" {
			if i, j := strings.Index(l, "<"), strings.Index(l, ">"); i >= 0 && j > i {
				next = url + l[i+1:j]
			}
		}
	}
	wall := time.Since(start)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	return usage{wall: wall, user: time.Duration(after.Utime.Nano() - before.Utime.Nano()), sys: time.Duration(after.Stime.Nano() - before.Stime.Nano())}, n, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
