package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Verify is a connector's background verification in `connectd run`: every Every, the
// daemon compares a sample of the lake with the source as `connectd verify` does
// (docs/operations.md, "Verifying the lake").
type Verify struct {
	Every  time.Duration `yaml:"every" doc:"How often connectd run verifies the connector's lake against its source (the first run one period after start, with up to 10% jitter); 0 or absent turns it off." example:"24h"`
	Sample Percent       `yaml:"sample" defaultdoc:"5%" doc:"Percent of the keys compared, chosen by a hash of the key (above 0, at most 100)." example:"5%"`
	Rate   int64         `yaml:"rate" defaultdoc:"10000" doc:"Source rows read per second by the background run, so it does not compete with the pipeline; 0 is unlimited."`
}

// The sample and rate of a verify section that does not set them. They are applied
// in code, not by a default tag: a rate of 0 (unlimited) must stay 0.
const (
	DefaultVerifySample Percent = 5
	DefaultVerifyRate   int64   = 10000
)

// Validate refuses a sample outside (0, 100] and a negative rate (the loader refuses
// a negative duration), and fills in the defaults of the keys left out.
func (c *Verify) Validate(v *Validation) {
	if v.Set("sample") && (c.Sample <= 0 || c.Sample > 100) {
		v.Errorf("sample", "must be above 0%% and at most 100%%; got %s", c.Sample)
	}
	if !v.Set("sample") {
		c.Sample = DefaultVerifySample
	}
	if !v.Set("rate") {
		c.Rate = DefaultVerifyRate
	}
	if v.Set("rate") && c.Rate < 0 {
		v.Errorf("rate", "must be 0 (unlimited) or more rows per second")
	}
}

// Percent is a percentage written "5%", "0.5%" or "5".
type Percent float64

// ConfigType names the type in the reference.
func (Percent) ConfigType() string { return "percent" }

// String writes the percentage as "5%".
func (p Percent) String() string { return strconv.FormatFloat(float64(p), 'g', -1, 64) + "%" }

// ParsePercent reads "5%", "0.5%" or "5".
func ParsePercent(s string) (Percent, error) {
	t := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%"))
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || t == "" || strings.ContainsAny(t, "eEnNiIxX") {
		return 0, fmt.Errorf("invalid percentage %q: want a number with an optional %%, e.g. 5%%", s)
	}
	return Percent(f), nil
}

// DecodeConfig reads the value as ParsePercent does.
func (p *Percent) DecodeConfig(v *Value) {
	s, ok := v.Scalar()
	if !ok {
		return
	}
	x, err := ParsePercent(s)
	if err != nil {
		v.Errorf("%v", err)
		return
	}
	*p = x
}

// JSONSchema is the schema of a percentage's values, for editors.
func (Percent) JSONSchema() map[string]any {
	return map[string]any{
		"type":    []any{"string", "number"},
		"pattern": `^\s*[0-9]+(\.[0-9]*)?\s*%?\s*$|^\s*\.[0-9]+\s*%?\s*$|\$\{`,
	}
}
