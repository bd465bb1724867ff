package convai_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/convai-retention/retention/convai"
	"github.com/convai-retention/retention/convai/convaitest"
)

func ExampleClient_Delete() {
	fake := convaitest.New(convaitest.Options{APIKey: "example-key"})
	srv := httptest.NewServer(fake)
	defer srv.Close()

	client, err := convai.New(convai.Config{BaseURL: srv.URL, APIKey: "example-key"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := client.Delete(ctx, "char-1", []string{"s2", "s1"})
	fmt.Println(res.Class, res.StatusCode, res.Err)
	fmt.Println(fake.Deleted())
	// Output:
	// confirmed 200 <nil>
	// map[char-1:[s1 s2]]
}

func ExampleParseRetryAfter() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, v := range []string{"30", "Thu, 01 Jan 2026 00:02:00 GMT", "-1", "999999"} {
		d, ok := convai.ParseRetryAfter(v, now)
		fmt.Println(d, ok)
	}
	// Output:
	// 30s true
	// 2m0s true
	// 0s false
	// 1h0m0s true
}
