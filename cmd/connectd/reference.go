package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/config/jsonschema"
	"github.com/connectd/connectd/config/reference"
	"github.com/connectd/connectd/connector/builtin"
)

// destinationKeys are the keys every destination has besides `type`, which the loader
// reads itself: they are described once here, for the reference and the schema.
type destinationKeys struct {
	Flush config.Flush `yaml:"flush" doc:"When the runtime makes the destination's data durable and commits the offset: whichever limit is reached first."`
}

// connectorKeys are the keys of a connector besides source and destination.
type connectorKeys struct {
	Verify config.Verify `yaml:"verify" doc:"Background verification of the lake against the source in connectd run (docs/operations.md, \"Verifying the lake\")."`
}

// referenceDocument is what the generated reference and the JSON Schema describe: the
// top level of the file, the keys every destination has, and each kind compiled in,
// in the order it is registered.
func referenceDocument() jsonschema.Document {
	reg := builtin.Registry("")
	d := jsonschema.Document{Top: &config.Config{}, Destination: &destinationKeys{}, Connector: &connectorKeys{}}
	for _, typ := range reg.SourceTypes() {
		s, _ := reg.SourceSpec(typ)
		d.Sources = append(d.Sources, s)
	}
	for _, typ := range reg.DestinationTypes() {
		s, _ := reg.DestinationSpec(typ)
		d.Destinations = append(d.Destinations, s)
	}
	return d
}

// configSchema is the JSON Schema of the config file, as `connectd schema` prints it
// and docs/connectd.schema.json holds it.
func configSchema() ([]byte, error) {
	s, err := jsonschema.File(referenceDocument())
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	return append(b, '\n'), nil
}

// rewriteReference returns doc with its generated tables rewritten from the specs.
func rewriteReference(doc []byte) ([]byte, error) {
	parts, err := reference.Parts(referenceDocument())
	if err != nil {
		return nil, err
	}
	return reference.Rewrite(doc, parts)
}

func newSchemaCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the config file, for editors (docs/configuration.md)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			b, err := configSchema()
			if err != nil {
				return err
			}
			_, err = g.stdout.Write(b)
			return err
		},
	}
}

func newDocsCmd(g *globalFlags) *cobra.Command {
	var check bool
	c := &cobra.Command{
		Use:   "docs FILE",
		Short: "Rewrite the generated key tables of a Markdown reference (docs/configuration.md) from the connectors' specs",
		Long: "Rewrite the parts of FILE between <!-- BEGIN GENERATED: name --> and <!-- END GENERATED --> with the key\n" +
			"tables of the top level, of every destination, and of each connector kind; the prose around them stays.",
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			path := args[0]
			doc, err := os.ReadFile(path)
			if err != nil {
				return usageErr(err)
			}
			out, err := rewriteReference(doc)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if string(out) == string(doc) {
				return nil
			}
			if check {
				return &exitError{code: 1, err: errors.New(path + " is stale: run `make docs`")}
			}
			return os.WriteFile(path, out, 0o644)
		},
	}
	c.Flags().BoolVar(&check, "check", false, "only report whether FILE is stale (exit status 1), without writing it")
	return c
}
