# One self-contained bash script per provision step, for the Vagrantfile's `inline:` provisioners:
#   the vendored provision/files/* (written to /run/labkit/files), provision/lib.sh, provision/<step>.sh.
# Nothing else has to reach the VM (no /vagrant share), and `vagrant provision --provision-with
# <step>` always runs the step with the files of this checkout.
module LabkitProvision
  FILES_DIR = "/run/labkit/files".freeze
  EOF_MARK = "LABKIT_FILE_EOF".freeze

  module_function

  def script(root, step)
    dir = File.join(root, "provision")
    parts = ["#!/usr/bin/env bash",
             "# Assembled by the Vagrantfile from provision/files/*, provision/lib.sh and provision/#{step}.sh",
             "set -euo pipefail",
             "umask 022",
             "mkdir -p #{FILES_DIR}"]
    Dir[File.join(dir, "files", "*")].sort.each do |path|
      parts << file_writer(path)
    end
    parts << "labkit_files=#{FILES_DIR}"
    parts << File.read(File.join(dir, "lib.sh"))
    parts << File.read(File.join(dir, "#{step}.sh"))
    parts.join("\n")
  end

  def file_writer(path)
    body = File.read(path)
    body += "\n" unless body.end_with?("\n")
    raise ArgumentError, "#{path} contains the line #{EOF_MARK}" if body.lines.any? { |l| l.chomp == EOF_MARK }
    "cat >#{FILES_DIR}/#{File.basename(path)} <<'#{EOF_MARK}'\n#{body}#{EOF_MARK}"
  end
end
