package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/fiberchat/fiberchat/module"
)

// clientShowSecret is `client show-secret --id ID`: the client's id and
// secret, as client create prints them, for whoever lost what serve
// printed on its first start. The secret is in the database in clear (a
// server needs it to check each api_token), so anyone who can read the
// database can read it too.
func clientShowSecret(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs, dsn := newFlags("client show-secret", stderr)
	id := fs.String("id", "", "client_id whose secret to print (required)")
	if code, ok := parseFlags(fs, args, getenv); !ok {
		return code
	}
	var secret string
	code := oneClient(ctx, fs, stderr, *dsn, *id, "", func(chat *module.Module) error {
		var err error
		secret, err = chat.ClientSecret(ctx, *id)
		return noSuchClient(err, *id)
	})
	if code != exitOK {
		return code
	}
	return printClient(stdout, stderr, *id, secret)
}

// clientResetSecret is `client reset-secret --id ID [--secret S]`: a new
// secret for the client, random unless given, printed as client create
// does. Whatever signed with the old one is refused from then on (the
// running servers drop it at once with --redis, else within a minute);
// the chat page fetches its tokens again by itself.
func clientResetSecret(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs, dsn := newFlags("client reset-secret", stderr)
	id := fs.String("id", "", "client_id to give a new secret (required)")
	secret := fs.String("secret", "", "the new client_secret, 8 to 128 characters (default: a random one)")
	redisURL := redisFlag(fs)
	if code, ok := parseFlags(fs, args, getenv); !ok {
		return code
	}
	var used string
	code := oneClient(ctx, fs, stderr, *dsn, *id, *redisURL, func(chat *module.Module) error {
		var err error
		used, err = chat.ResetClientSecret(ctx, *id, *secret)
		return noSuchClient(err, *id)
	})
	if code != exitOK {
		return code
	}
	return printClient(stdout, stderr, *id, used)
}

// noSuchClient says module.ErrNoSuchClient in words, naming the client.
func noSuchClient(err error, id string) error {
	if errors.Is(err, module.ErrNoSuchClient) {
		return fmt.Errorf("no client %q (%s client list shows them)", id, command)
	}
	return err
}

// printClient prints {"client_id":"…","client_secret":"…"} and a newline.
func printClient(stdout, stderr io.Writer, id, secret string) int {
	out, err := json.Marshal(struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}{id, secret})
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "%s\n", out)
	return exitOK
}
