package credential

import (
	"errors"
	"strings"
	"testing"
)

func wantValidation(t *testing.T, err error, field, msg string) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %v, want a ValidationError", err)
	}
	if ve.Field != field || ve.Message != msg {
		t.Fatalf("got field %q message %q\nwant field %q message %q", ve.Field, ve.Message, field, msg)
	}
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"prod-azure-bloblake", "a", "A_b-9", strings.Repeat("x", MaxNameLength)} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("ValidateName(%q) = %v", ok, err)
		}
	}
	cases := []struct{ in, msg string }{
		{"", "name is required"},
		{"prod azure", `name "prod azure" contains invalid character " "`},
		{"prod.azure", `name "prod.azure" contains invalid character "."`},
		{"café", `name "café" contains invalid character "é"`},
		{strings.Repeat("x", MaxNameLength+1), "name must be at most 64 characters"},
	}
	for _, c := range cases {
		wantValidation(t, ValidateName(c.in), "name", c.msg)
	}
}

func TestValidateStorageAccount(t *testing.T) {
	for _, ok := range []string{"bloblake", "abc", "a1b2c3", strings.Repeat("z", 24)} {
		if err := ValidateStorageAccount("storage_account", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	cases := []struct{ in, msg string }{
		{"Bloblake", `storage account "Bloblake" contains invalid character "B"`},
		{"blob-lake", `storage account "blob-lake" contains invalid character "-"`},
		{"blob_lake", `storage account "blob_lake" contains invalid character "_"`},
		{"ab", `storage account "ab" must be 3 to 24 characters long`},
		{strings.Repeat("z", 25), `storage account "` + strings.Repeat("z", 25) + `" must be 3 to 24 characters long`},
		{"", "storage account is required"},
	}
	for _, c := range cases {
		wantValidation(t, ValidateStorageAccount("storage_account", c.in), "storage_account", c.msg)
	}
}

func TestValidateContainer(t *testing.T) {
	for _, ok := range []string{"lakedata", "abc", "a-b-c", "1data2", strings.Repeat("c", 63)} {
		if err := ValidateContainer("container_name", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	cases := []struct{ in, msg string }{
		{"mycontainer/some/prefix", `container "mycontainer/some/prefix" contains a slash; slashes belong to the prefix of base_path (az://<account>/<container>/<prefix>), never the container name`},
		{"LakeData", `container "LakeData" contains invalid character "L"`},
		{"lake_data", `container "lake_data" contains invalid character "_"`},
		{"ab", `container "ab" must be 3 to 63 characters long`},
		{strings.Repeat("c", 64), `container "` + strings.Repeat("c", 64) + `" must be 3 to 63 characters long`},
		{"-lake", `container "-lake" must start and end with a letter or digit`},
		{"lake-", `container "lake-" must start and end with a letter or digit`},
		{"lake--data", `container "lake--data" must not contain consecutive hyphens`},
		{"", "container name is required"},
	}
	for _, c := range cases {
		wantValidation(t, ValidateContainer("container_name", c.in), "container_name", c.msg)
	}
}

func TestParseBasePath(t *testing.T) {
	good := []struct {
		in   string
		want BasePath
	}{
		{"az://bloblake/lakedata", BasePath{"bloblake", "lakedata", ""}},
		{"az://bloblake/lakedata/", BasePath{"bloblake", "lakedata", ""}},
		{"az://bloblake/lakedata/data", BasePath{"bloblake", "lakedata", "data"}},
		{"az://bloblake/lakedata/a/b/c/", BasePath{"bloblake", "lakedata", "a/b/c"}},
	}
	for _, g := range good {
		got, err := ParseBasePath(g.in)
		if err != nil || got != g.want {
			t.Errorf("ParseBasePath(%q) = %+v, %v; want %+v", g.in, got, err, g.want)
		}
	}
	shape := "az://<account>/<container>[/<prefix>]"
	bad := []struct{ in, msg string }{
		{"", "base_path is required"},
		{"s3://bloblake/lakedata", `base_path "s3://bloblake/lakedata" must start with az:// and look like ` + shape},
		{"https://bloblake.blob.core.windows.net/lakedata", `base_path "https://bloblake.blob.core.windows.net/lakedata" must start with az:// and look like ` + shape},
		{"az:///lakedata", `base_path "az:///lakedata" has no storage account; it must look like ` + shape},
		{"az://bloblake", `base_path "az://bloblake" has no container; it must look like ` + shape},
		{"az://bloblake/", `base_path "az://bloblake/" has no container; it must look like ` + shape},
		{"az://Bloblake/lakedata", `storage account "Bloblake" contains invalid character "B"`},
		{"az://bloblake/lake--data", `container "lake--data" must not contain consecutive hyphens`},
		{"az://bloblake/lakedata//x", `base_path prefix "/x" has an empty path segment`},
		{"az://bloblake/lakedata/a/../b", `base_path prefix "a/../b" must not contain ".." segments`},
		{"az://bloblake/lakedata/a\\b", `base_path prefix "a\\b" contains invalid character "\\"`},
		{"az://bloblake/lakedata//", `base_path prefix "/" has an empty path segment`},
		{"az://bloblake/lakedata/a\uFFFDb", "base_path prefix \"a\uFFFDb\" contains invalid character \"\uFFFD\""},
		{"az://bloblake/lakedata/" + strings.Repeat("\xff", 200), `base_path prefix is not valid UTF-8`},
		{"az://bloblake/lakedata/" + strings.Repeat("p", 513), "base_path prefix must be at most 512 characters"},
	}
	for _, b := range bad {
		_, err := ParseBasePath(b.in)
		wantValidation(t, err, "base_path", b.msg)
	}
}

func TestBasePathRoundTrip(t *testing.T) {
	for _, in := range []string{"az://bloblake/lakedata", "az://bloblake/lakedata/a/b"} {
		bp, err := ParseBasePath(in)
		if err != nil || bp.String() != in {
			t.Errorf("round trip of %q gave %q, %v", in, bp.String(), err)
		}
	}
}

func TestValidateUUID(t *testing.T) {
	if err := ValidateUUID("tenant_id", "ceeafc3d-f026-420b-a75b-9df0c970e6d1"); err != nil {
		t.Fatal(err)
	}
	if err := ValidateUUID("tenant_id", "CEEAFC3D-F026-420B-A75B-9DF0C970E6D1"); err != nil {
		t.Fatal(err)
	}
	wantValidation(t, ValidateUUID("tenant_id", "contoso.onmicrosoft.com"), "tenant_id",
		`tenant_id "contoso.onmicrosoft.com" is not a UUID (expected the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)`)
	wantValidation(t, ValidateUUID("subscription_id", "ceeafc3d-f026-420b-a75b-9df0c970e6dz"), "subscription_id",
		`subscription_id "ceeafc3d-f026-420b-a75b-9df0c970e6dz" is not a UUID (expected the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)`)
	wantValidation(t, ValidateUUID("subscription_id", ""), "subscription_id", "subscription_id is required")
}

func TestValidateResourceGroup(t *testing.T) {
	for _, ok := range []string{"rg", "my-rg_1", "rg.(prod)", "grüne-gruppe", strings.Repeat("r", 90)} {
		if err := ValidateResourceGroup("resource_group", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	cases := []struct{ in, msg string }{
		{"", "resource group is required"},
		{"my rg", `resource group "my rg" contains invalid character " "`},
		{"rg/x", `resource group "rg/x" contains invalid character "/"`},
		{"rg.", `resource group "rg." must not end with a period`},
		{strings.Repeat("r", 91), `resource group "` + strings.Repeat("r", 91) + `" must be 1 to 90 characters long`},
		// A long value is cut short in the message, at a character boundary.
		{strings.Repeat("ü", 91), `resource group "` + strings.Repeat("ü", 50) + `…" must be 1 to 90 characters long`},
	}
	for _, c := range cases {
		wantValidation(t, ValidateResourceGroup("resource_group", c.in), "resource_group", c.msg)
	}
}
