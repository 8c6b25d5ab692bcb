package policy

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const (
	// maxConfigSize caps the config file: a real one is a few KiB, and
	// reading without a cap lets `--config /dev/zero` or a runaway file eat
	// the machine's memory.
	maxConfigSize = 1 << 20
	// maxSecretFileSize caps a secret, certificate or key file: a PEM chain
	// of a few certificates is under 16 KiB.
	maxSecretFileSize = 64 << 10
)

// readRegularFile reads at most limit bytes of the regular file at path
// (symbolic links are followed, as Kubernetes secret volumes need). Anything
// else (a directory, a device, a FIFO that would block) is refused before it
// is opened, and a file over the limit is refused after reading limit+1
// bytes. Errors never quote the content; only *fs.PathError names the path.
func readRegularFile(path string, limit int64) ([]byte, fs.FileInfo, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, nil, notRegular(info)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	// Stat the opened file too: the path may have been swapped in between.
	if info, err = f.Stat(); err != nil {
		return nil, nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, nil, notRegular(info)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, nil, err
	}
	if int64(len(data)) > limit {
		return nil, nil, errTooLarge(limit)
	}
	return data, info, nil
}

type errTooLarge int64

func (e errTooLarge) Error() string {
	return "is larger than " + sizeName(int64(e)) + ", the limit for this file"
}

func sizeName(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

func notRegular(info fs.FileInfo) error {
	kind := "not a regular file"
	switch m := info.Mode(); {
	case m.IsDir():
		kind = "a directory"
	case m&fs.ModeCharDevice != 0, m&fs.ModeDevice != 0:
		kind = "a device"
	case m&fs.ModeNamedPipe != 0:
		kind = "a named pipe"
	case m&fs.ModeSocket != 0:
		kind = "a socket"
	}
	return errors.New("is " + kind + ", not a regular file")
}

// readSecretFile reads a credential file named in the config. A relative
// path is relative to the config file's directory. The value is trimmed of
// one trailing newline (echo and most editors add one). The returned message
// names the file, never its content.
//
// It returns the path as resolved, for messages.
func readSecretFile(configFile, path string) (value, resolved, problem string) {
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(configFile), path)
	}
	data, _, err := readRegularFile(path, maxSecretFileSize)
	if err != nil {
		var pe *fs.PathError
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", path, fmt.Sprintf("cannot read %s: no such file", path)
		case errors.Is(err, fs.ErrPermission):
			return "", path, fmt.Sprintf("cannot read %s: permission denied", path)
		case errors.As(err, &pe):
			return "", path, fmt.Sprintf("cannot read %s: %v", path, pe.Err)
		default:
			return "", path, fmt.Sprintf("cannot read %s: it %s", path, err)
		}
	}
	s := strings.TrimSuffix(string(data), "\n")
	s = strings.TrimSuffix(s, "\r")
	return s, path, ""
}
