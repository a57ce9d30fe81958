/* reid-train student: MDKT distillation of an image (student) network. */
#include <stdio.h>

#include "cli.h"
#include "train_args.h"

static const char *const summary =
    "usage: reid-train student --data DIR --teacher T.safetensors --output PAIR.safetensors\n"
    "                          [options]\n"
    "\n"
    "MDKT (mutual discriminative knowledge transfer): distils the video teacher into a\n"
    "student that sees M of the teacher's T frames (M = 1: a pure image model). Both\n"
    "networks get the same batch: P identities x K tracklets, T frames each for the\n"
    "teacher; the student's M frames are a random subset of those T, in temporal order,\n"
    "drawn per sample, so every distillation pair is the same tracklet.\n"
    "Student loss = w_tr TR + w_mkd KD(t->s) + w_pd PD + w_tcl TCL(t->s):\n"
    "  tr   batch-hard soft-margin triplet (mined on the student's own distances) + CE\n"
    "  mkd  tau1^2 KL(y_t || y_s), y = softmax(logits / tau1), mean over samples\n"
    "  pd   0.5 mean over all B x B entries of (D_t - D_s)^2 on squared Euclidean\n"
    "       distances, i.e. (1/B^2) sum_{i<j} (D_t - D_s)^2 (VKD's form; weight 1e-4)\n"
    "  tcl  sum over triplets of KL(P_t || P_s), P = [p, 1-p], p = sigmoid((d_an - d_ap)/tau2)\n"
    "       on Euclidean distances, triplets = batch-hard mined on the TEACHER's distances\n"
    "       and used for both networks\n"
    "Teacher modes (the poster's Table 2):\n"
    "  frozen       'freeze teacher': the teacher is not updated and runs in eval mode\n"
    "               (BN running statistics); only the t->s terms act\n"
    "  independent  'without mutual': the teacher keeps training, on its own TR loss only\n"
    "               (triplet + CE); no term flows from the student to the teacher\n"
    "  mutual       'with mutual' (default): the teacher trains on TR + w_mkd KD(s->t)\n"
    "               + w_pd PD + w_tcl TCL(s->t), i.e. tau1^2 KL(y_s || y_t) and\n"
    "               sum KL(P_s || P_t) for the losses selected; PD is symmetric and reaches\n"
    "               both networks\n"
    "In each direction the other network's output is a constant (no gradient through the\n"
    "target). The output holds both networks (teacher.* and student.*); its metadata\n"
    "names the student for both image_model and video_model, since MDKT aligns logits\n"
    "and distances, not embedding coordinates: matching student queries against teacher\n"
    "tracklets works poorly. 'reid-train export' extracts either network.\n"
    "Defaults follow VKD's student: P=12 x K=4, T=8, M=2, 500 epochs, lr x0.1 at 300 and 450.\n"
    "\n"
    "MDKT:\n"
    "  --teacher FILE         trained teacher (required; a pair's video model also works)\n"
    "  --teacher-mode MODE    frozen, independent or mutual (default)\n"
    "  --losses LIST          any non-empty subset of tr,mkd,pd,tcl (default all four)\n"
    "  --tau1 X               KD temperature (default 10, VKD)\n"
    "  --tau2 X               TCL temperature on distances (default 1; not published)\n"
    "  --w-tr X --w-mkd X --w-pd X --w-tcl X   weights (defaults 1, 0.1, 1e-4, 1)\n"
    "  --student-frames M     frames the student sees per sample (default 2; 1 = image)\n"
    "  --student-init I       teacher (default: copy its weights; same architecture),\n"
    "                         scratch, or a checkpoint file\n"
    "  --arch A               the student's architecture (default: the teacher's)\n"
    "  --last-stride N        the student's last stride (default 1)\n"
    "The input size and normalisation are the teacher's.\n";

int cmd_student(int argc, char **argv) {
  char help[12288];
  snprintf(help, sizeof help, "%s%s  -h, --help             this text\n", summary,
           train_args_common_help);
  reid_train_config c;
  int code;
  if (!train_args_parse("student", 1, help, argc, argv, &c, &code)) return code;
  reid_status st = reid_train(&c);
  if (st != REID_OK) return cli_library_error("student", st);
  if (c.progress) fprintf(c.progress, "reid-train student: wrote %s\n", c.output);
  return CLI_OK;
}
