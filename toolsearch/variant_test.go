package toolsearch

import "testing"

// TestVariants checks that two definitions of one name at one connector
// (what two users of a per-user connector may each be listed) are two
// documents, that a filter admitting one variant finds it alone, ranked by
// its own text and never by the other's, and that a name and variant given
// twice keep their first doc.
func TestVariants(t *testing.T) {
	ix := New()
	ix.Replace("p", []Doc{
		{Name: "status", Variant: "alice", Description: "Reports the xylophone status."},
		{Name: "status", Variant: "bob", Description: "Reports the zeppelin status."},
		{Name: "status", Variant: "alice", Description: "A second alice status, dropped."},
		{Name: "other", Description: "Something else."},
	})
	if n := ix.Len(); n != 3 {
		t.Fatalf("Len = %d, want 3: two variants of status and other", n)
	}
	only := func(variant string) func(*Doc) bool {
		return func(d *Doc) bool { return d.Name != "status" || d.Variant == variant }
	}
	for _, tt := range []struct {
		query, variant string
		want           string // the status description found, "" for none
	}{
		{"xylophone", "alice", "Reports the xylophone status."},
		{"xylophone", "bob", ""},
		{"zeppelin", "bob", "Reports the zeppelin status."},
		{"zeppelin", "alice", ""},
		{"dropped", "alice", ""},
		{"status", "bob", "Reports the zeppelin status."},
		{"p_status", "alice", "Reports the xylophone status."},
	} {
		hits, err := ix.SearchDocs(tt.query, 10, only(tt.variant))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range hits {
			if h.Name == "status" {
				got = append(got, h.Description)
			}
		}
		if (tt.want == "" && len(got) != 0) || (tt.want != "" && (len(got) != 1 || got[0] != tt.want)) {
			t.Errorf("%q as %s: status hits %q, want %q", tt.query, tt.variant, got, tt.want)
		}
	}
	// Search, whose filter sees only names, admits both variants.
	if hits, _ := ix.Search("status", 10, nil); len(hits) != 2 {
		t.Errorf("Search status with no filter: %d hits, want both variants", len(hits))
	}
}

// TestWrites checks that Writes counts Replace and Remove, and that a
// search writes nothing.
func TestWrites(t *testing.T) {
	ix := newCorpus()
	w := ix.Writes()
	if w == 0 {
		t.Fatal("Writes = 0 after the corpus was indexed")
	}
	for range 10 {
		if _, err := ix.Search("create issue", 5, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := ix.Writes(); got != w {
		t.Errorf("Writes went from %d to %d over searches alone", w, got)
	}
	ix.Replace("extra", []Doc{{Name: "x"}})
	ix.Remove("extra")
	if got := ix.Writes(); got != w+2 {
		t.Errorf("Writes = %d after a Replace and a Remove, want %d", got, w+2)
	}
}
