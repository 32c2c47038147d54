package host

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"

	"github.com/connectd/connectd/connector"
	pb "github.com/connectd/connectd/plugins/proto/connectd/v1"
)

// checkStart launches a plugin for `connectd check` and reports the launch as the
// first check line; c is nil when it did not start.
func checkStart(ctx context.Context, dir string, pc *Config, kind string, log *slog.Logger, t Timeouts) (*conn, any, []connector.CheckResult) {
	name := "plugin"
	if pc != nil {
		name = "plugin " + pluginName(pc)
	}
	c, raw, err := launch(ctx, dir, pc, kind, log, t.withDefaults())
	if err != nil {
		return nil, nil, []connector.CheckResult{{Name: name + ": start", Detail: err.Error(),
			Fix: "build the plugin for this machine, check name/path, plugins.dir and sha256, and that it uses a matching plugins/sdk"}}
	}
	return c, raw, []connector.CheckResult{{Name: name + ": start", OK: true,
		Detail: c.path + " (" + c.spec.GetName() + " " + c.spec.GetVersion() + ", " + c.spec.GetSdk() + ")"}}
}

// runCheck runs the plugin's own checks.
func runCheck(ctx context.Context, c *conn, pc *Config, connectorName string,
	check func(context.Context, *pb.ConfigRequest, ...grpc.CallOption) (*pb.CheckResponse, error)) []connector.CheckResult {
	cfg, err := configJSON(pc)
	if err != nil {
		return []connector.CheckResult{{Name: "plugin " + c.name + ": config", Detail: err.Error(), Fix: "use plain YAML values in config:"}}
	}
	var resp *pb.CheckResponse
	err = c.unary(ctx, "check", c.t.Call, func(ctx context.Context) (err error) {
		resp, err = check(ctx, &pb.ConfigRequest{Connector: connectorName, ConfigJson: cfg})
		return err
	})
	if err != nil {
		return []connector.CheckResult{{Name: "plugin " + c.name + ": check", Detail: err.Error(), Fix: "see the plugin's log lines above"}}
	}
	out := make([]connector.CheckResult, 0, len(resp.GetResults()))
	for _, r := range resp.GetResults() {
		out = append(out, connector.CheckResult{Name: r.GetName(), OK: r.GetOk(), Detail: r.GetDetail(), Fix: r.GetFix()})
	}
	return out
}
