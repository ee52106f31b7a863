package toolsearch

import (
	"fmt"
	"testing"
)

// corpus is a fixed catalog of realistic tools, by connector.
var corpus = map[string][]Doc{
	"github": {
		{Name: "create_issue", Title: "Create issue", Description: "Open a new issue in a GitHub repository with a title, body, labels and assignees."},
		{Name: "list_issues", Title: "List issues", Description: "List the issues of a repository, filtered by state, labels or assignee."},
		{Name: "create_pull_request", Title: "Create pull request", Description: "Open a pull request that merges a head branch into a base branch."},
		{Name: "merge_pull_request", Title: "Merge pull request", Description: "Merge an open pull request by merge commit, squash or rebase."},
		{Name: "search_code", Title: "Search code", Description: "Search source code across GitHub repositories with the code search syntax."},
		{Name: "get_file_contents", Title: "Get file contents", Description: "Read a file or directory from a repository at a branch, tag or commit."},
		{Name: "create_branch", Title: "Create branch", Description: "Create a new branch in a repository from an existing ref."},
	},
	"slack": {
		{Name: "post_message", Title: "Post message", Description: "Send a message to a Slack channel or direct message conversation."},
		{Name: "list_channels", Title: "List channels", Description: "List the public and private channels of the workspace."},
		{Name: "search_messages", Title: "Search messages", Description: "Search the workspace's messages by keyword, sender and date."},
		{Name: "add_reaction", Title: "Add reaction", Description: "Add an emoji reaction to a message."},
		{Name: "get_user_profile", Title: "Get user profile", Description: "Read a Slack user's profile: name, title, status and time zone."},
	},
	"notion": {
		{Name: "notion-search", Title: "Search Notion", Description: "Search pages and databases in the Notion workspace by title and content."},
		{Name: "notion-fetch", Title: "Fetch page", Description: "Fetch a Notion page or database with its blocks."},
		{Name: "notion-create-pages", Title: "Create pages", Description: "Create one or more pages under a parent page or in a database."},
		{Name: "notion-update-page", Title: "Update page", Description: "Change a page's properties or replace its content."},
		{Name: "notion-add-comment", Title: "Add comment", Description: "Comment on a page or on a discussion thread."},
	},
	"jira": {
		{Name: "createIssue", Title: "Create Jira issue", Description: "Create a Jira issue (bug, story, task) in a project."},
		{Name: "transitionIssue", Title: "Transition issue", Description: "Move a Jira issue to another status in its workflow, such as In Progress or Done."},
		{Name: "searchJQL", Title: "Search with JQL", Description: "Find Jira issues with a JQL query."},
		{Name: "addWorklog", Title: "Log work", Description: "Record time spent on an issue."},
		{Name: "getSprint", Title: "Get sprint", Description: "Read the active sprint of a board and the issues in it."},
	},
	"gdrive": {
		{Name: "drive.files.list", Title: "List files", Description: "List the files in Google Drive, with an optional query on name and type."},
		{Name: "drive.files.upload", Title: "Upload file", Description: "Upload a new file to Google Drive."},
		{Name: "drive.permissions.create", Title: "Share file", Description: "Share a Drive file with a user, group or domain by granting a permission."},
		{Name: "docs.documents.get", Title: "Read document", Description: "Read a Google Docs document's text."},
		{Name: "sheets.values.update", Title: "Update spreadsheet cells", Description: "Write values to a range of cells in a Google Sheets spreadsheet."},
	},
	"postgres": {
		{Name: "query", Title: "Run SQL query", Description: "Run a read-only SQL query against the database and return the rows."},
		{Name: "list_tables", Title: "List tables", Description: "List the tables of a schema."},
		{Name: "describe_table", Title: "Describe table", Description: "Show the columns, types and indexes of a table."},
		{Name: "explain_query", Title: "Explain query plan", Description: "Show the execution plan PostgreSQL chooses for a SQL statement."},
		{Name: "execute", Title: "Execute statement", Description: "Execute an INSERT, UPDATE or DELETE statement in a transaction."},
	},
	"stripe": {
		{Name: "create_customer", Title: "Create customer", Description: "Create a Stripe customer with an email address and name."},
		{Name: "create_refund", Title: "Refund a payment", Description: "Refund a charge or payment intent, in whole or in part."},
		{Name: "list_invoices", Title: "List invoices", Description: "List the invoices of a customer with their amounts and status."},
		{Name: "create_payment_link", Title: "Create payment link", Description: "Make a shareable link at which a customer pays for a product."},
		{Name: "retrieve_balance", Title: "Retrieve balance", Description: "Read the account's available and pending balance."},
	},
	"calendar": {
		{Name: "createEvent", Title: "Create event", Description: "Schedule a meeting or event on a Google Calendar with attendees."},
		{Name: "listEvents", Title: "List events", Description: "List upcoming events of a calendar between two dates."},
		{Name: "findFreeTime", Title: "Find free time", Description: "Find free slots in which every attendee is available for a meeting."},
		{Name: "deleteEvent", Title: "Cancel event", Description: "Delete an event and notify its attendees."},
		{Name: "updateEvent", Title: "Reschedule event", Description: "Move an event to another time or change its attendees."},
	},
}

// relevance are queries an agent would write, and the tool each must find
// in the top 3.
var relevance = []struct{ query, connector, tool string }{
	{"open a new github issue", "github", "create_issue"},
	{"merge PR", "github", "merge_pull_request"},
	{"pull request merge", "github", "merge_pull_request"},
	{"read a file from a repository", "github", "get_file_contents"},
	{"send a slack message to a channel", "slack", "post_message"},
	{"react with an emoji", "slack", "add_reaction"},
	{"search notion pages", "notion", "notion-search"},
	{"comment on a notion page", "notion", "notion-add-comment"},
	{"move jira ticket to done", "jira", "transitionIssue"},
	{"JQL", "jira", "searchJQL"},
	{"log time spent on an issue", "jira", "addWorklog"},
	{"upload file to drive", "gdrive", "drive.files.upload"},
	{"share a document with a user", "gdrive", "drive.permissions.create"},
	{"write cells in a spreadsheet", "gdrive", "sheets.values.update"},
	{"run sql select", "postgres", "query"},
	{"columns of a table", "postgres", "describe_table"},
	{"query plan", "postgres", "explain_query"},
	{"refund a payment", "stripe", "create_refund"},
	{"invoices of a customer", "stripe", "list_invoices"},
	{"schedule a meeting", "calendar", "createEvent"},
	{"when is everyone available", "calendar", "findFreeTime"},
	{"cancel meeting", "calendar", "deleteEvent"},
	{"github_create_branch", "github", "create_branch"},
	{"listEvents", "calendar", "listEvents"},
	// Inflections, which the stemmer joins to the tools' words.
	{"refunds", "stripe", "create_refund"},
	{"rescheduling an event", "calendar", "updateEvent"},
	{"shared files", "gdrive", "drive.permissions.create"},
}

// newCorpus indexes corpus.
func newCorpus() *Index {
	ix := New()
	for c, docs := range corpus {
		ix.Replace(c, docs)
	}
	return ix
}

// TestRelevance: each query of relevance finds its tool in the top 3.
func TestRelevance(t *testing.T) {
	ix := newCorpus()
	n := 0
	for _, docs := range corpus {
		n += len(docs)
	}
	if n < 40 || len(corpus) < 8 || len(relevance) < 15 {
		t.Fatalf("the corpus is too small to judge: %d tools, %d connectors, %d queries", n, len(corpus), len(relevance))
	}
	for _, q := range relevance {
		hits, err := ix.Search(q.query, 3, nil)
		if err != nil {
			t.Fatalf("%q: %v", q.query, err)
		}
		if !hasHit(hits, q.connector, q.tool) {
			t.Errorf("%q: %s/%s not in the top 3: %v", q.query, q.connector, q.tool, names(hits))
		}
	}
}

// TestRelevanceFiltered: a tool the filter refuses is never a hit, and the
// limit counts only the allowed ones.
func TestRelevanceFiltered(t *testing.T) {
	ix := newCorpus()
	noGitHub := func(c, _ string) bool { return c != "github" }
	hits, err := ix.Search("create issue", 3, noGitHub)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 3 {
		t.Fatalf("got %d hits, want the limit of 3 filled from the allowed tools: %v", len(hits), names(hits))
	}
	for _, h := range hits {
		if h.Connector == "github" {
			t.Errorf("refused tool %s/%s is a hit", h.Connector, h.Name)
		}
	}
	if hits[0].Connector != "jira" || hits[0].Name != "createIssue" {
		t.Errorf("first hit %s/%s, want jira/createIssue", hits[0].Connector, hits[0].Name)
	}
}

func hasHit(hits []Hit, connector, tool string) bool {
	for _, h := range hits {
		if h.Connector == connector && h.Name == tool {
			return true
		}
	}
	return false
}

func names(hits []Hit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = fmt.Sprintf("%s/%s %.2f", h.Connector, h.Name, h.Score)
	}
	return out
}
