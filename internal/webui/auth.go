package webui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Authentication: the admin token, presented once on the login form. The
// session cookie then holds an expiry and HMAC-SHA256(token, expiry), never
// the token, so it proves knowledge of the current token without revealing
// it, and rotating the token ends every session. Basic auth (any user name,
// the token as password) and the API's bearer token work too, for scripts.
//
// CSRF: every form carries HMAC-SHA256(token, value of the bsync_csrf
// cookie), a random per-browser value set on the first page. A POST whose
// field does not match its cookie is refused with 403 before routing, the
// login form included. Both cookies are HttpOnly and SameSite=Strict, and
// Secure when the request came over HTTPS.

const (
	sessionCookie = "bsync_session"
	csrfCookie    = "bsync_csrf"
	csrfField     = "csrf"
	// SessionLifetime is how long a login lasts.
	SessionLifetime = 12 * time.Hour
)

func (u *UI) token() string { return u.d.Config.Admin.Token.Reveal() }

func mac(key, purpose, msg string) string {
	h := hmac.New(sha256.New, []byte(key))
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (u *UI) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: Prefix, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r)}
}

// sessionValue is "expiry.HMAC(token, expiry)".
func sessionValue(token string, exp time.Time) string {
	e := strconv.FormatInt(exp.Unix(), 10)
	return e + "." + mac(token, "session", e)
}

func validSession(token, v string) bool {
	e, sig, ok := strings.Cut(v, ".")
	if !ok {
		return false
	}
	sec, err := strconv.ParseInt(e, 10, 64)
	if err != nil || time.Now().After(time.Unix(sec, 0)) {
		return false
	}
	return hmac.Equal([]byte(sig), []byte(mac(token, "session", e)))
}

// authenticated reports whether r carries a valid session cookie, basic
// auth password or bearer token.
func (u *UI) authenticated(r *http.Request) bool {
	tok := u.token()
	if tok == "" {
		return false
	}
	if c, err := r.Cookie(sessionCookie); err == nil && validSession(tok, c.Value) {
		return true
	}
	if _, pw, ok := r.BasicAuth(); ok {
		return subtle.ConstantTimeCompare([]byte(pw), []byte(tok)) == 1
	}
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		return subtle.ConstantTimeCompare([]byte(h[7:]), []byte(tok)) == 1
	}
	return false
}

// auth lets authenticated requests through; a browser asking for a page is
// sent to the login form, anything else gets 401.
func (u *UI) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u.authenticated(r) {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, "/state") {
			http.Redirect(w, r, Prefix+"login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		// A Bearer challenge: browsers show no password dialog for it, and
		// scripts may send basic auth or the bearer token up front.
		w.Header().Set("WWW-Authenticate", `Bearer realm="bookingsync admin"`)
		http.Error(w, "admin token required", http.StatusUnauthorized)
	})
}

// csrfToken returns the form token for this browser, setting its CSRF
// cookie first if it has none.
func (u *UI) csrfToken(w http.ResponseWriter, r *http.Request) string {
	v := ""
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 16 {
		v = c.Value
	} else {
		b := make([]byte, 18)
		_, _ = rand.Read(b)
		v = base64.RawURLEncoding.EncodeToString(b)
		http.SetCookie(w, u.cookie(r, csrfCookie, v, 0))
		// Later calls while handling this request see the same value.
		r.AddCookie(&http.Cookie{Name: csrfCookie, Value: v})
	}
	return mac(u.token(), "csrf", v)
}

func (u *UI) checkCSRF(r *http.Request) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || len(c.Value) < 16 || u.token() == "" {
		return false
	}
	got := r.PostFormValue(csrfField)
	return got != "" && hmac.Equal([]byte(got), []byte(mac(u.token(), "csrf", c.Value)))
}

type loginData struct {
	Next, Error string
	NoToken     bool
}

func (u *UI) loginForm(w http.ResponseWriter, r *http.Request) {
	u.render(w, r, "login", "Sign in", loginData{Next: localNext(r.URL.Query().Get("next")), NoToken: u.token() == ""})
}

func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	next := localNext(r.PostFormValue("next"))
	tok := u.token()
	if tok == "" || subtle.ConstantTimeCompare([]byte(r.PostFormValue("token")), []byte(tok)) != 1 {
		time.Sleep(300 * time.Millisecond) // slows guessing; the token is long and random anyway
		w.WriteHeader(http.StatusUnauthorized)
		u.render(w, r, "login", "Sign in", loginData{Next: next, Error: "That is not the admin token.", NoToken: tok == ""})
		return
	}
	http.SetCookie(w, u.cookie(r, sessionCookie, sessionValue(tok, time.Now().Add(SessionLifetime)), int(SessionLifetime/time.Second)))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, u.cookie(r, sessionCookie, "", -1))
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}

// localNext keeps a post-login redirect inside the UI.
func localNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix
	}
	return next
}
