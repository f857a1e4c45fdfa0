package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/bookingsync/bookingsync/internal/config"
	"github.com/bookingsync/bookingsync/internal/dataverse"
	"github.com/bookingsync/bookingsync/internal/subscriptions"
	"github.com/bookingsync/bookingsync/internal/sync/d365"
)

// Webhook endpoint names. EnsureWebhook finds a service endpoint by name,
// so these identify our registrations in an environment.
const (
	WebhookResources  = "bookingsync resources"
	WebhookBookings   = "bookingsync bookings"
	WebhookWorkOrders = "bookingsync work orders"
)

// WebhookSpecs is the one definition of the Dataverse webhooks bookingsync
// needs; `bookingsync dataverse register-webhook` and the sandbox both
// register exactly these:
//
//   - bookable resources: Update, filtered on the enrollment columns only,
//     so our own status write-back is never sent to us;
//   - bookings: Create and Update with a post image of versionnumber (the
//     service recognises the webhook about its own write without reading
//     the booking), Delete with a pre image (the row is gone afterwards);
//   - work orders: Update filtered on the columns events show, because a
//     work-order edit changes its bookings' events though the booking rows
//     do not change.
//
// All steps are asynchronous post-operation steps authenticated with key
// (auth type WebhookKey: Dataverse appends ?code=<key>).
func WebhookSpecs(cfg *config.Config, key string) []dataverse.WebhookSpec {
	url := cfg.DataverseWebhookURL()
	post := []dataverse.ImageSpec{{Alias: "post", Type: dataverse.PostImage, Attributes: []string{"versionnumber"}}}
	return []dataverse.WebhookSpec{
		{
			Name: WebhookResources, URL: url, Auth: dataverse.AuthWebhookKey, AuthValue: key,
			Entity: "bookableresource",
			Steps:  []dataverse.StepSpec{{Message: "Update", FilteringAttributes: subscriptions.EnrollmentColumns(cfg.Dataverse.OptInColumn)}},
		},
		{
			Name: WebhookBookings, URL: url, Auth: dataverse.AuthWebhookKey, AuthValue: key,
			Entity: "bookableresourcebooking",
			Steps: []dataverse.StepSpec{
				{Message: "Create", Images: post},
				{Message: "Update", Images: post},
				{Message: "Delete", Images: []dataverse.ImageSpec{{Alias: "pre", Type: dataverse.PreImage}}},
			},
		},
		{
			Name: WebhookWorkOrders, URL: url, Auth: dataverse.AuthWebhookKey, AuthValue: key,
			Entity: "msdyn_workorder",
			Steps:  []dataverse.StepSpec{{Message: "Update", FilteringAttributes: d365.WorkOrderColumns()}},
		},
	}
}

// RegisterWebhooks ensures every spec (idempotent: existing rows are
// updated to match, missing ones created).
func RegisterWebhooks(ctx context.Context, dv *dataverse.Client, specs []dataverse.WebhookSpec) ([]*dataverse.WebhookRegistration, error) {
	var regs []*dataverse.WebhookRegistration
	for _, spec := range specs {
		reg, err := dv.EnsureWebhook(ctx, spec)
		if err != nil {
			return regs, err
		}
		regs = append(regs, reg)
	}
	return regs, nil
}

// RemovedWebhook reports what RemoveWebhooks deleted for one endpoint name.
type RemovedWebhook struct {
	Name                     string
	Endpoints, Steps, Images int
}

// RemoveWebhooks deletes the service endpoints named like the specs, with
// every step registered on them and those steps' images (images first,
// then steps, then the endpoint, so nothing is left dangling if it stops
// half-way; running it again finishes the job). Endpoints that do not
// exist are skipped.
func RemoveWebhooks(ctx context.Context, dv *dataverse.Client, specs []dataverse.WebhookSpec) ([]RemovedWebhook, error) {
	var out []RemovedWebhook
	for _, spec := range specs {
		r := RemovedWebhook{Name: spec.Name}
		endpoints, err := listIDs(ctx, dv, dataverse.SetServiceEndpoints, "serviceendpointid",
			dataverse.And(dataverse.Eq("name", dataverse.String(spec.Name)), dataverse.Eq("contract", dataverse.Int(8))))
		if err != nil {
			return out, fmt.Errorf("remove webhook %s: %w", spec.Name, err)
		}
		for _, ep := range endpoints {
			steps, err := listIDs(ctx, dv, dataverse.SetSteps, "sdkmessageprocessingstepid",
				dataverse.Eq("_eventhandler_value", dataverse.GUID(ep)))
			if err != nil {
				return out, fmt.Errorf("remove webhook %s: steps: %w", spec.Name, err)
			}
			for _, step := range steps {
				images, err := listIDs(ctx, dv, dataverse.SetStepImages, "sdkmessageprocessingstepimageid",
					dataverse.Eq("_sdkmessageprocessingstepid_value", dataverse.GUID(step)))
				if err != nil {
					return out, fmt.Errorf("remove webhook %s: images: %w", spec.Name, err)
				}
				for _, img := range images {
					if err := deleteIgnoringGone(ctx, dv, dataverse.SetStepImages, img); err != nil {
						return out, fmt.Errorf("remove webhook %s: %w", spec.Name, err)
					}
					r.Images++
				}
				if err := deleteIgnoringGone(ctx, dv, dataverse.SetSteps, step); err != nil {
					return out, fmt.Errorf("remove webhook %s: %w", spec.Name, err)
				}
				r.Steps++
			}
			if err := deleteIgnoringGone(ctx, dv, dataverse.SetServiceEndpoints, ep); err != nil {
				return out, fmt.Errorf("remove webhook %s: %w", spec.Name, err)
			}
			r.Endpoints++
		}
		out = append(out, r)
	}
	return out, nil
}

func listIDs(ctx context.Context, dv *dataverse.Client, set, idCol string, f dataverse.Filter) ([]string, error) {
	var ids []string
	err := dv.List(ctx, set, dataverse.Query{Select: []string{idCol}, Filter: f}, func(raw json.RawMessage) error {
		var row map[string]any
		if err := json.Unmarshal(raw, &row); err != nil {
			return err
		}
		s, _ := row[idCol].(string)
		id, err := dataverse.ParseID(s)
		if err != nil {
			return fmt.Errorf("%s: %w", idCol, err)
		}
		ids = append(ids, id)
		return nil
	})
	return ids, err
}

func deleteIgnoringGone(ctx context.Context, dv *dataverse.Client, set, id string) error {
	if err := dv.Delete(ctx, set, id, ""); err != nil && !errors.Is(err, dataverse.ErrNotFound) {
		return err
	}
	return nil
}
