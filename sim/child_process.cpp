#include "child_process.h"

#include <glib.h>
#include <sys/wait.h>

#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

namespace onedfu::sim {
namespace {

struct ChildWait {
  GMainLoop* loop = nullptr;
  GPid pid = 0;
  int status = 0;
  bool timed_out = false;
  guint timeout_source = 0;
};

// The child RunChildProcess waits for (0: none); SignalRunningChild reads it.
GPid g_running_child = 0;

void OnChildExit(GPid pid, gint wait_status, gpointer user_data) {
  auto* wait = static_cast<ChildWait*>(user_data);
  wait->status = wait_status;
  g_spawn_close_pid(pid);
  g_main_loop_quit(wait->loop);
}

gboolean OnChildTimeout(gpointer user_data) {
  auto* wait = static_cast<ChildWait*>(user_data);
  wait->timed_out = true;
  wait->timeout_source = 0;
  kill(wait->pid, SIGKILL);  // OnChildExit still reaps it and ends the loop
  return G_SOURCE_REMOVE;
}

// NULL-terminated pointers into `strings` (which must outlive the result).
std::vector<gchar*> Pointers(const std::vector<std::string>& strings) {
  std::vector<gchar*> out;
  out.reserve(strings.size() + 1);
  for (const std::string& s : strings) out.push_back(const_cast<gchar*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

}  // namespace

int RunChildProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                    unsigned timeout_ms, std::string* error) {
  if (argv.empty()) {
    *error = "RunChildProcess: empty command";
    return -1;
  }
  std::vector<gchar*> args = Pointers(argv);
  std::vector<gchar*> envp = Pointers(env);

  std::fflush(stdout);
  std::fflush(stderr);
  GPid pid = 0;
  GError* spawn_error = nullptr;
  const gboolean spawned = g_spawn_async(
      nullptr, args.data(), envp.data(),
      static_cast<GSpawnFlags>(G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_CHILD_INHERITS_STDIN),
      nullptr, nullptr, &pid, &spawn_error);
  if (!spawned) {
    *error = "cannot run " + argv[0] + ": " + (spawn_error != nullptr ? spawn_error->message : "unknown error");
    if (spawn_error != nullptr) g_error_free(spawn_error);
    return -1;
  }

  ChildWait wait;
  wait.loop = g_main_loop_new(nullptr, FALSE);
  wait.pid = pid;
  g_running_child = pid;
  g_child_watch_add(pid, &OnChildExit, &wait);
  if (timeout_ms > 0) wait.timeout_source = g_timeout_add(timeout_ms, &OnChildTimeout, &wait);
  g_main_loop_run(wait.loop);
  g_running_child = 0;
  if (wait.timeout_source != 0) g_source_remove(wait.timeout_source);
  g_main_loop_unref(wait.loop);

  if (wait.timed_out) {
    *error = argv[0] + " did not finish within " + std::to_string(timeout_ms) + " ms and was killed";
    return -1;
  }
  if (WIFEXITED(wait.status)) return WEXITSTATUS(wait.status);
  if (WIFSIGNALED(wait.status)) return 128 + WTERMSIG(wait.status);
  *error = argv[0] + " ended with wait status " + std::to_string(wait.status);
  return -1;
}

bool SignalRunningChild(int signal) {
  if (g_running_child <= 0) return false;
  return kill(g_running_child, signal) == 0;
}

}  // namespace onedfu::sim
