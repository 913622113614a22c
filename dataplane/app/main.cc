// vigil-dataplane: the inline bridge.
//
//   vigil-dataplane --config FILE [--eve PATH] [-- EAL args...]            live, until SIGINT/TERM
//   vigil-dataplane --config FILE --pcap-in IN [--pcap-out OUT] [...]       replay a capture
//   vigil-dataplane --config FILE --check                                  validate, print EAL args
//
// Prints its counters as JSON on stdout when it stops.
#include <pcap/pcap.h>
#include <rte_eal.h>
#include <rte_errno.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "dataplane/app/config.h"
#include "dataplane/app/dataplane.h"
#include "dataplane/app/privileges.h"
#include "dataplane/detect/inspector.h"

namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop.store(true, std::memory_order_relaxed); }
// SIGHUP: read the rule files again (lock-free atomic stores are async-signal-safe).
std::atomic<bool> g_reload{false};
void OnHangup(int) { g_reload.store(true, std::memory_order_relaxed); }

int Usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s --config FILE [--pcap-in IN.pcap [--pcap-out OUT.pcap]] [--eve PATH]\n"
               "       [--counters FILE] [--check] [-- EAL-ARGS...]\n"
               "  --config FILE     vigil.yaml (see docs/configuration.md)\n"
               "  --pcap-in IN      replay mode: run the capture through the full pipeline as\n"
               "                    fast as possible on a net_pcap port, then exit\n"
               "  --pcap-out OUT    replay mode: write the forwarded frames here\n"
               "  --eve PATH        override outputs.eve.path\n"
               "  --control-socket PATH  send events to vigil-control there (outputs.control)\n"
               "  --journal-dir DIR      override outputs.control.journal_dir\n"
               "  --counters FILE   also write the final counters JSON to FILE\n"
               "  --command-socket PATH  serve commands (block tables) there (commands.socket)\n"
               "  --replay-pps N    replay mode: at most N packets per second (default: no limit)\n"
               "  --check           validate the config, print the EAL arguments, exit\n"
               "  -- ARGS           extra EAL arguments, passed through verbatim\n",
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path, pcap_in, pcap_out, eve_path, counters_path, control_socket, journal_dir;
  std::string command_socket, replay_pps;
  bool check = false;
  std::vector<std::string> extra_eal;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    if (a == "--") {
      for (++i; i < argc; ++i) extra_eal.emplace_back(argv[i]);
    } else if (a == "--config") {
      if (!value(&config_path)) return Usage(argv[0]);
    } else if (a == "--pcap-in") {
      if (!value(&pcap_in)) return Usage(argv[0]);
    } else if (a == "--pcap-out") {
      if (!value(&pcap_out)) return Usage(argv[0]);
    } else if (a == "--eve") {
      if (!value(&eve_path)) return Usage(argv[0]);
    } else if (a == "--control-socket") {
      if (!value(&control_socket)) return Usage(argv[0]);
    } else if (a == "--journal-dir") {
      if (!value(&journal_dir)) return Usage(argv[0]);
    } else if (a == "--command-socket") {
      if (!value(&command_socket)) return Usage(argv[0]);
    } else if (a == "--replay-pps") {
      if (!value(&replay_pps)) return Usage(argv[0]);
    } else if (a == "--counters") {
      if (!value(&counters_path)) return Usage(argv[0]);
    } else if (a == "--check") {
      check = true;
    } else if (a == "-h" || a == "--help") {
      Usage(argv[0]);
      return 0;
    } else {
      std::fprintf(stderr, "vigil-dataplane: unknown argument '%s'\n", a.c_str());
      return Usage(argv[0]);
    }
  }
  if (config_path.empty()) return Usage(argv[0]);
  if (!pcap_out.empty() && pcap_in.empty()) {
    std::fprintf(stderr, "vigil-dataplane: --pcap-out needs --pcap-in\n");
    return 2;
  }

  vigil::dp::ConfigResult loaded = vigil::dp::LoadConfigFile(config_path);
  if (!loaded.config) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.ToString().c_str());
    std::fprintf(stderr, "vigil-dataplane: %zu error(s) in %s\n", loaded.errors.size(),
                 config_path.c_str());
    return 2;
  }
  vigil::dp::Config config = *loaded.config;
  if (!eve_path.empty()) config.eve_path = eve_path;
  if (!control_socket.empty()) {
    config.control_enabled = true;
    config.control_socket = control_socket;
  }
  if (!journal_dir.empty()) config.control_journal_dir = journal_dir;
  if (!command_socket.empty()) {
    config.commands_enabled = true;
    config.commands_socket = command_socket;
  }

  vigil::dp::RunOptions options;
  if (!replay_pps.empty()) {
    char* end = nullptr;
    options.replay_pps = std::strtoull(replay_pps.c_str(), &end, 10);
    if (pcap_in.empty() || *end != '\0' || options.replay_pps == 0) {
      std::fprintf(stderr, "vigil-dataplane: --replay-pps needs --pcap-in and a positive number\n");
      return 2;
    }
  }
  if (!pcap_in.empty()) {
    // Replay: one net_pcap port bridged to itself, one worker (a pcap port has one queue).
    for (const std::string* p : {&pcap_in, &pcap_out}) {
      if (p->find(',') != std::string::npos) {
        std::fprintf(stderr, "vigil-dataplane: pcap paths cannot contain ',': %s\n", p->c_str());
        return 2;
      }
    }
    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_t* pc = pcap_open_offline(pcap_in.c_str(), errbuf);
    if (pc == nullptr) {
      std::fprintf(stderr, "vigil-dataplane: --pcap-in %s: %s\n", pcap_in.c_str(), errbuf);
      return 2;
    }
    const int linktype = pcap_datalink(pc);
    pcap_close(pc);
    if (linktype != DLT_EN10MB) {
      // The bridge carries Ethernet frames; anything else would be decoded as garbage.
      std::fprintf(stderr,
                   "vigil-dataplane: --pcap-in %s: link type %d (%s) is not Ethernet; convert "
                   "it first (e.g. tcprewrite --dlt=enet)\n",
                   pcap_in.c_str(), linktype, pcap_datalink_val_to_name(linktype));
      return 2;
    }
    options.replay = true;
    vigil::dp::PortConfig port;
    port.name = "pcap";
    port.device = "net_pcap_vigil0,rx_pcap=" + pcap_in;
    if (!pcap_out.empty()) port.device += ",tx_pcap=" + pcap_out;
    config.ports = {port};
    config.bridges.clear();
    config.worker_lcores.resize(1);
  }

  // Without hugepages no secondary process can attach anyway: --no-shconf keeps instances
  // (tests, replays) from contending for one runtime config file.
  if (!config.hugepages) extra_eal.insert(extra_eal.begin(), "--no-shconf");
  std::vector<std::string> eal_args = vigil::dp::BuildEalArgs(config, argv[0], extra_eal);
  if (check) {
    std::printf("config ok: %s\neal:", config_path.c_str());
    for (const auto& a : eal_args) std::printf(" %s", a.c_str());
    std::printf("\n");
    if (config.detect.enabled) {
      // The rule set is part of the configuration: load and build it as the start-up would.
      const vigil::dp::DetectLoad load = vigil::dp::LoadDetector(config.detect);
      std::printf("detect: %s\n", load.summary.c_str());
      if (load.detector == nullptr) {
        std::fprintf(stderr, "vigil-dataplane: %s\n", load.error.c_str());
        return 2;
      }
      std::printf("detect: %zu rules in the engine, %zu dropped\n", load.detector->size(),
                  load.stats.dropped.size());
    }
    return 0;
  }

  std::vector<char*> eal_argv;
  eal_argv.reserve(eal_args.size() + 1);
  for (auto& a : eal_args) eal_argv.push_back(a.data());
  eal_argv.push_back(nullptr);
  if (rte_eal_init(static_cast<int>(eal_args.size()), eal_argv.data()) < 0) {
    std::fprintf(stderr, "vigil-dataplane: EAL init failed: %s\n", rte_strerror(rte_errno));
    return 1;
  }

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGHUP, OnHangup);

  int rc = 0;
  {
    vigil::dp::Dataplane dp;
    // Pushed configurations are compared with the file's settings, not with the overrides.
    const size_t slash = config_path.rfind('/');
    dp.SetBaseConfig(*loaded.config,
                     slash == std::string::npos ? "." : config_path.substr(0, slash));
    const std::string err = dp.Init(config, options);
    if (!err.empty()) {
      std::fprintf(stderr, "vigil-dataplane: %s\n", err.c_str());
      rc = 1;
    } else {
      // Start-up is over: memory mapped, ports started, sockets and files open. The main thread
      // (commands, exports, the event channel) and the workers go on without capabilities.
      const std::string cap_err = vigil::dp::DropThreadCapabilities();
      if (!cap_err.empty()) {
        std::fprintf(stderr, "vigil-dataplane: dropping capabilities: %s\n", cap_err.c_str());
      }
      if (!options.replay) {
        std::fprintf(stderr, "vigil-dataplane: forwarding (capabilities %s); Ctrl-C to stop\n",
                     vigil::dp::EffectiveCapabilities() == 0 ? "dropped" : "kept");
      }
      dp.Run(&g_stop, &g_reload);
      const std::string json = dp.CountersJson();
      std::printf("%s\n", json.c_str());
      if (!counters_path.empty()) {
        if (FILE* f = std::fopen(counters_path.c_str(), "w")) {
          std::fprintf(f, "%s\n", json.c_str());
          std::fclose(f);
        } else {
          std::fprintf(stderr, "vigil-dataplane: cannot write %s\n", counters_path.c_str());
          rc = 1;
        }
      }
    }
  }
  rte_eal_cleanup();
  return rc;
}
