package cli

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/tipreaper/tipreaper/internal/policy"
	"github.com/tipreaper/tipreaper/internal/store"
)

// tokenStoreTimeout bounds each read or write of a kept refresh token.
const tokenStoreTimeout = 30 * time.Second

// tokenKeeper is what the refresh-token credential needs of the store.
type tokenKeeper interface {
	RefreshToken(ctx context.Context, account string) (store.SealedToken, bool, error)
	SaveRefreshToken(ctx context.Context, t store.SealedToken) error
}

// errTokenKey says a kept refresh token does not open with the configured token_key. It never carries the
// token or the key.
var errTokenKey = errors.New("the refresh token kept in the store does not decrypt with token_key " +
	"(another key sealed it, or it was altered): configure the key that sealed it, or, to start over, " +
	"delete the account's row from reaper_refresh_tokens and give a fresh refresh token in the config")

// sealToken encrypts token for account: AES-256-GCM with key, a random nonce
// (first in the result), the account name as additional data so a sealed
// token moved to another account's row does not open.
func sealToken(key []byte, account, token string) ([]byte, error) {
	aead, err := tokenAEAD(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(token)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal refresh token: nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, []byte(token), []byte(account)), nil
}

// openToken decrypts what sealToken made for account; errTokenKey when it does not open.
func openToken(key []byte, account string, sealed []byte) (string, error) {
	aead, err := tokenAEAD(key)
	if err != nil {
		return "", err
	}
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return "", errTokenKey
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], []byte(account))
	if err != nil {
		return "", errTokenKey
	}
	return string(plain), nil
}

func tokenAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("token_key is %d bytes, not the 32 of AES-256", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("token_key: %w", err)
	}
	return cipher.NewGCM(block)
}

// refreshCredential returns the refresh token account a starts with — the
// newest kept in the store, else the config's — and the callback that keeps
// each rotated one, sealed with key. The errors name no token; the engine
// names the account.
func refreshCredential(keeper tokenKeeper, key []byte, a policy.Account) (string, func(context.Context, string) error, error) {
	if keeper == nil {
		return "", nil, errors.New("no store to keep rotated refresh tokens in")
	}
	ctx, cancel := context.WithTimeout(context.Background(), tokenStoreTimeout)
	defer cancel()
	token := a.RefreshToken.Reveal()
	kept, ok, err := keeper.RefreshToken(ctx, a.Name)
	if err != nil {
		return "", nil, err
	}
	if ok {
		if token, err = openToken(key, a.Name, kept.Sealed); err != nil {
			return "", nil, err
		}
	}
	save := func(ctx context.Context, newToken string) error {
		sealed, err := sealToken(key, a.Name, newToken)
		if err != nil {
			return err
		}
		// The old token is void already: keep the new one even when the pass is being stopped.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tokenStoreTimeout)
		defer cancel()
		return keeper.SaveRefreshToken(ctx, store.SealedToken{Account: a.Name, Sealed: sealed, StoredAt: time.Now()})
	}
	return token, save, nil
}
