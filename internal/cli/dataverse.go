package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/bookingsync/bookingsync/internal/config"
	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/service"
)

// Tables on which bookingsync needs Dataverse change tracking (the safety
// net behind the webhooks: bookings, and work orders whose edits change
// the events of their bookings).
var changeTrackedTables = []string{"bookableresourcebooking", "msdyn_workorder"}

const (
	resourceTable   = "bookableresource"
	statusMaxLength = 400 // dataverse-api.md, appendix
)

func runDataverse(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	usageLine := "usage: bookingsync dataverse setup [--config FILE] [--prefix P] [--solution NAME] | register-webhook [--config FILE] [--remove]"
	if len(args) == 0 {
		fmt.Fprintln(stderr, usageLine)
		return errUsage
	}
	switch args[0] {
	case "setup":
		return runDataverseSetup(ctx, args[1:], stdout, stderr)
	case "register-webhook":
		return runRegisterWebhook(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "bookingsync dataverse: unknown subcommand %q\n%s\n", args[0], usageLine)
	return errUsage
}

// apiClients loads the configuration and builds the Graph and Dataverse
// clients the way the service does.
func apiClients(path string, stderr io.Writer) (*config.Config, *service.APIClients, error) {
	cfg, err := loadConfig(path, stderr)
	if err != nil {
		return nil, nil, err
	}
	cl, err := service.NewAPIClients(cfg, nil, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	return cfg, cl, nil
}

// SetupOptions are the inputs of DataverseSetup besides the configuration.
type SetupOptions struct {
	// Prefix is the publisher's customization prefix; "" means the prefix
	// of the configured column names. The column names must carry it.
	Prefix string
	// Solution, if set, adds the new columns to this unmanaged solution.
	Solution string
}

// DataverseSetup creates the opt-in choice column and the status column on
// bookableresource and switches change tracking on, skipping what is
// already in place. It prints one line per item and returns whether it
// wrote anything.
func DataverseSetup(ctx context.Context, cfg *config.Config, dv *dataverse.Client, o SetupOptions, w io.Writer) (changed bool, err error) {
	d := cfg.Dataverse
	colPrefix, _, _ := strings.Cut(d.OptInColumn, "_")
	if o.Prefix == "" {
		o.Prefix = colPrefix
	}
	o.Prefix = strings.ToLower(o.Prefix)
	for _, kc := range [][2]string{{"dataverse.optin_column", d.OptInColumn}, {"dataverse.status_column", d.StatusColumn}} {
		key, col := kc[0], kc[1]
		if !strings.HasPrefix(col, o.Prefix+"_") || len(col) == len(o.Prefix)+1 {
			return false, fmt.Errorf("%s %q does not start with the publisher prefix %q: set dataverse.optin_column and dataverse.status_column to %s_… names (and dataverse.optin_allowed/optin_not_allowed to your publisher's option values), or pass the prefix they use", key, col, o.Prefix+"_", o.Prefix)
		}
	}
	def, err := entityDefinition(ctx, dv, resourceTable)
	if err != nil {
		return false, err
	}
	var published []string

	optin := resourceTable + "." + d.OptInColumn
	switch a := def.Attribute(d.OptInColumn); {
	case a == nil:
		col := dataverse.ChoiceColumn{
			SchemaName:  schemaName(d.OptInColumn, config.DefaultOptInColumn, "bsync_OutlookSync"),
			DisplayName: dataverse.Label{Text: "Outlook calendar sync"},
			Description: dataverse.Label{Text: "Allowed: bookingsync keeps this resource's bookings in sync with the technician's Outlook calendar."},
			Options: []dataverse.ChoiceOption{
				{Value: d.OptInAllowed, Label: dataverse.Label{Text: "Allowed"}},
				{Value: d.OptInNotAllowed, Label: dataverse.Label{Text: "Not Allowed"}},
			},
		}
		if _, err := dv.CreateChoiceColumn(ctx, resourceTable, col, o.Solution); err != nil {
			return changed, err
		}
		changed = true
		published = append(published, resourceTable)
		fmt.Fprintf(w, "created:          %s (choice: %d Allowed, %d Not Allowed)\n", optin, d.OptInAllowed, d.OptInNotAllowed)
	case a.AttributeType != "Picklist":
		return changed, fmt.Errorf("%s exists but is a %s column, not a choice (Picklist): rename dataverse.optin_column or fix the column", optin, a.AttributeType)
	default:
		fmt.Fprintf(w, "already in place: %s (choice)\n", optin)
	}

	status := resourceTable + "." + d.StatusColumn
	switch a := def.Attribute(d.StatusColumn); {
	case a == nil:
		col := dataverse.TextColumn{
			SchemaName:  schemaName(d.StatusColumn, config.DefaultStatusColumn, "bsync_OutlookSyncStatus"),
			DisplayName: dataverse.Label{Text: "Outlook calendar sync status"},
			Description: dataverse.Label{Text: "Written by bookingsync: the last outcome of enabling or renewing the calendar sync."},
			MaxLength:   statusMaxLength,
		}
		if _, err := dv.CreateTextColumn(ctx, resourceTable, col, o.Solution); err != nil {
			return changed, err
		}
		changed = true
		if len(published) == 0 {
			published = append(published, resourceTable)
		}
		fmt.Fprintf(w, "created:          %s (text, %d characters)\n", status, statusMaxLength)
	case a.AttributeType != "String" && a.AttributeType != "Memo":
		return changed, fmt.Errorf("%s exists but is a %s column, not text: rename dataverse.status_column or fix the column", status, a.AttributeType)
	default:
		fmt.Fprintf(w, "already in place: %s (text)\n", status)
	}

	for _, t := range changeTrackedTables {
		m, err := entityDefinition(ctx, dv, t)
		if err != nil {
			return changed, err
		}
		if m.ChangeTrackingEnabled {
			fmt.Fprintf(w, "already in place: change tracking on %s\n", t)
			continue
		}
		if err := dv.EnableChangeTracking(ctx, t); err != nil {
			return changed, err
		}
		changed = true
		published = append(published, t)
		fmt.Fprintf(w, "switched on:      change tracking on %s\n", t)
	}

	if len(published) > 0 {
		if err := dv.Publish(ctx, published...); err != nil {
			// The columns and the flag exist once created; publishing
			// makes the labels and forms current. Not fatal.
			fmt.Fprintf(w, "warning:          publishing %s failed (%v); publish customizations in the maker portal\n", strings.Join(published, ", "), err)
		} else {
			fmt.Fprintf(w, "published:        %s\n", strings.Join(published, ", "))
		}
	}
	return changed, nil
}

// schemaName keeps the documented casing for the default names; other
// names are used as given (the schema name differs from the logical name
// only in case).
func schemaName(logical, def, defSchema string) string {
	if logical == def {
		return defSchema
	}
	return logical
}

func runDataverseSetup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dataverse setup", stderr)
	path := fs.String("config", "", "YAML configuration file (default $BOOKINGSYNC_CONFIG)")
	prefix := fs.String("prefix", "", "publisher customization prefix (default: the prefix of dataverse.optin_column, e.g. bsync)")
	solution := fs.String("solution", "", "unique name of an unmanaged solution to add the columns to (optional)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, cl, err := apiClients(*path, stderr)
	if err != nil {
		return err
	}
	changed, err := DataverseSetup(ctx, cfg, cl.Dataverse, SetupOptions{Prefix: *prefix, Solution: *solution}, stdout)
	if err != nil {
		return err
	}
	if !changed {
		fmt.Fprintln(stdout, "nothing to do: everything already in place")
	}
	return nil
}

func runRegisterWebhook(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dataverse register-webhook", stderr)
	path := fs.String("config", "", "YAML configuration file (default $BOOKINGSYNC_CONFIG)")
	remove := fs.Bool("remove", false, "delete the service endpoints, their steps and images instead")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, cl, err := apiClients(*path, stderr)
	if err != nil {
		return err
	}
	if *remove {
		return RemoveWebhooks(ctx, cfg, cl.Dataverse, stdout)
	}
	return RegisterWebhooks(ctx, cfg, cl.Dataverse, stdout)
}

// RegisterWebhooks registers service.WebhookSpecs (idempotently) and
// prints what is registered.
func RegisterWebhooks(ctx context.Context, cfg *config.Config, dv *dataverse.Client, w io.Writer) error {
	key := cfg.Dataverse.WebhookKey.Reveal()
	if key == "" {
		return errors.New("dataverse.webhook_key is not set (BOOKINGSYNC_DATAVERSE_WEBHOOK_KEY or dataverse.webhook_key_file)")
	}
	specs := service.WebhookSpecs(cfg, key)
	regs, err := service.RegisterWebhooks(ctx, dv, specs)
	if err != nil {
		return err
	}
	for i, spec := range specs {
		fmt.Fprintf(w, "registered: %s → %s (endpoint %s)\n", spec.Name, spec.URL, regs[i].EndpointID)
		for _, st := range spec.Steps {
			fmt.Fprintf(w, "  %-6s of %s%s  (step %s)\n", st.Message, spec.Entity, describeStep(st), regs[i].StepIDs[st.Message])
		}
	}
	return nil
}

func describeStep(st dataverse.StepSpec) string {
	var parts []string
	if len(st.FilteringAttributes) > 0 {
		parts = append(parts, "filtered on "+strings.Join(st.FilteringAttributes, ","))
	}
	for _, img := range st.Images {
		kind := "post image"
		if img.Type == dataverse.PreImage {
			kind = "pre image"
		}
		cols := "all columns"
		if len(img.Attributes) > 0 {
			cols = strings.Join(img.Attributes, ",")
		}
		parts = append(parts, kind+" "+img.Alias+" ("+cols+")")
	}
	if len(parts) == 0 {
		return ""
	}
	return ", " + strings.Join(parts, "; ")
}

// RemoveWebhooks deletes what RegisterWebhooks registers.
func RemoveWebhooks(ctx context.Context, cfg *config.Config, dv *dataverse.Client, w io.Writer) error {
	removed, err := service.RemoveWebhooks(ctx, dv, service.WebhookSpecs(cfg, "unused"))
	for _, r := range removed {
		if r.Endpoints == 0 {
			fmt.Fprintf(w, "not registered: %s\n", r.Name)
			continue
		}
		fmt.Fprintf(w, "removed: %s (%d endpoint, %d steps, %d images)\n", r.Name, r.Endpoints, r.Steps, r.Images)
	}
	return err
}

// entityDefinition reads a table's definition with its columns and change
// tracking flag. It filters the EntityDefinitions collection and expands
// Attributes without nested options, a form both Dataverse and the
// emulator answer (the emulator does not take Attributes($select=…), which
// dataverse.Client.EntityDefinition sends).
func entityDefinition(ctx context.Context, dv *dataverse.Client, table string) (*dataverse.EntityMetadata, error) {
	var defs []dataverse.EntityMetadata
	err := dv.List(ctx, "EntityDefinitions", dataverse.Query{
		Select: []string{"MetadataId", "LogicalName", "SchemaName", "EntitySetName", "ChangeTrackingEnabled"},
		Filter: dataverse.Eq("LogicalName", dataverse.String(table)),
		Expand: []dataverse.Expand{{Nav: "Attributes"}},
	}, func(raw json.RawMessage) error {
		var m dataverse.EntityMetadata
		if err := json.Unmarshal(raw, &m); err != nil {
			return err
		}
		defs = append(defs, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("entity definition %s: %w", table, err)
	}
	if len(defs) != 1 {
		return nil, fmt.Errorf("entity definition %s: %d tables found", table, len(defs))
	}
	return &defs[0], nil
}
