package firefox

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// callPrefs make a fresh profile able to join a call with no person and
// no device: a generated camera and microphone, no permission prompt, and
// ICE host candidates on loopback with their real addresses (Parley's
// test server only offers 127.0.0.1 candidates; an mDNS name would never
// resolve here). permission.fake makes the generated devices count as a
// real capture, as after a user allowed the camera: Firefox lets a page
// that captures play sound without a click, and only then is the test
// what a real user gets.
var callPrefs = map[string]any{
	"media.navigator.streams.fake":                      true,
	"media.navigator.permission.disabled":               true,
	"media.navigator.permission.fake":                   true,
	"media.peerconnection.ice.loopback":                 true,
	"media.peerconnection.ice.obfuscate_host_addresses": false,
}

// quietPrefs stop Firefox from reaching for the network on its own: the
// test machines only have loopback, and a background fetch that hangs or
// fails must neither slow a test nor put noise in its log.
var quietPrefs = map[string]any{
	// First-run and default-browser screens.
	"browser.shell.checkDefaultBrowser":             false,
	"browser.startup.homepage_override.mstone":      "ignore",
	"browser.startup.page":                          0,
	"browser.startup.homepage":                      "about:blank",
	"browser.newtabpage.enabled":                    false,
	"browser.newtab.preload":                        false,
	"browser.aboutwelcome.enabled":                  false,
	"startup.homepage_welcome_url":                  "about:blank",
	"startup.homepage_welcome_url.additional":       "",
	"browser.sessionstore.resume_from_crash":        false,
	"toolkit.startup.max_resumed_crashes":           -1,
	"browser.tabs.warnOnClose":                      false,
	"browser.warnOnQuit":                            false,
	"identity.fxaccounts.enabled":                   false,
	"browser.discovery.enabled":                     false,
	"browser.translations.enable":                   false,
	"browser.ml.enable":                             false,
	"browser.backup.enabled":                        false,
	"browser.topsites.contile.enabled":              false,
	"browser.urlbar.suggest.quicksuggest.sponsored": false,
	// Telemetry and data reporting.
	"datareporting.policy.dataSubmissionEnabled":                  false,
	"datareporting.policy.dataSubmissionPolicyBypassNotification": true,
	"datareporting.healthreport.uploadEnabled":                    false,
	"toolkit.telemetry.enabled":                                   false,
	"toolkit.telemetry.unified":                                   false,
	"toolkit.telemetry.archive.enabled":                           false,
	"toolkit.telemetry.server":                                    "data:,",
	"toolkit.telemetry.newProfilePing.enabled":                    false,
	"toolkit.telemetry.shutdownPingSender.enabled":                false,
	"toolkit.telemetry.firstShutdownPing.enabled":                 false,
	"toolkit.telemetry.reportingpolicy.firstRun":                  false,
	"browser.crashReports.unsubmittedCheck.autoSubmit2":           false,
	// Updates of the browser, add-ons, system add-ons and media plugins
	// (the OpenH264 plugin is a download; Parley's SFU prefers VP8).
	"app.update.auto":                                 false,
	"app.update.checkInstallTime":                     false,
	"app.update.disabledForTesting":                   true,
	"extensions.update.enabled":                       false,
	"extensions.update.autoUpdateDefault":             false,
	"extensions.getAddons.cache.enabled":              false,
	"extensions.blocklist.enabled":                    false,
	"extensions.systemAddon.update.enabled":           false,
	"extensions.systemAddon.update.url":               "",
	"media.gmp-manager.updateEnabled":                 false,
	"media.gmp-manager.url":                           "",
	"browser.search.update":                           false,
	"browser.region.network.url":                      "",
	"browser.region.update.enabled":                   false,
	"geo.enabled":                                     false,
	"geo.provider.network.url":                        "",
	"services.settings.server":                        "data:,#remote-settings-dummy/v1",
	"nimbus.rollouts.enabled":                         false,
	"app.normandy.enabled":                            false,
	"app.normandy.api_url":                            "",
	"app.shield.optoutstudies.enabled":                false,
	"security.remote_settings.crlite_filters.enabled": false,
	"security.remote_settings.intermediates.enabled":  false,
	// Safe Browsing list downloads.
	"browser.safebrowsing.malware.enabled":             false,
	"browser.safebrowsing.phishing.enabled":            false,
	"browser.safebrowsing.blockedURIs.enabled":         false,
	"browser.safebrowsing.downloads.enabled":           false,
	"browser.safebrowsing.downloads.remote.enabled":    false,
	"browser.safebrowsing.provider.google4.updateURL":  "",
	"browser.safebrowsing.provider.google4.gethashURL": "",
	"browser.safebrowsing.provider.mozilla.updateURL":  "",
	"browser.safebrowsing.provider.mozilla.gethashURL": "",
	// Connectivity probes, captive portal, DNS over HTTPS, proxies and
	// speculative connections.
	"network.captive-portal-service.enabled":    false,
	"captivedetect.canonicalURL":                "",
	"network.connectivity-service.enabled":      false,
	"network.trr.mode":                          5,
	"network.dns.disablePrefetch":               true,
	"network.prefetch-next":                     false,
	"network.http.speculative-parallel-limit":   0,
	"browser.urlbar.speculativeConnect.enabled": false,
	"security.OCSP.enabled":                     0,
	"security.certerrors.mitm.priming.enabled":  false,
}

// sinkProxyPrefs send every request Firefox would make to anything but
// loopback (Firefox never proxies loopback) to the proxy at port on
// 127.0.0.1, which refuses them and records what was asked: whatever the
// prefs above miss can then neither leave the machine nor go unnoticed.
func sinkProxyPrefs(port int) map[string]any {
	return map[string]any{
		"network.proxy.type":          1,
		"network.proxy.http":          "127.0.0.1",
		"network.proxy.http_port":     port,
		"network.proxy.ssl":           "127.0.0.1",
		"network.proxy.ssl_port":      port,
		"network.proxy.no_proxies_on": "",
	}
}

// writeUserJS writes the profile's user.js, which Firefox reads at every
// start and which wins over its defaults; extra comes last and wins.
func writeUserJS(profileDir string, extra map[string]any) error {
	var b strings.Builder
	b.WriteString("// Written by Parley's Firefox end-to-end tests for a throwaway profile.\n")
	for _, prefs := range []map[string]any{quietPrefs, callPrefs, extra} {
		keys := make([]string, 0, len(prefs))
		for k := range prefs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			// JSON encodes strings, numbers and booleans the way the
			// prefs parser reads them.
			v, err := json.Marshal(prefs[k])
			if err != nil {
				return fmt.Errorf("pref %s: %w", k, err)
			}
			fmt.Fprintf(&b, "user_pref(%q, %s);\n", k, v)
		}
	}
	if err := os.WriteFile(filepath.Join(profileDir, "user.js"), []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write user.js: %w", err)
	}
	return nil
}
